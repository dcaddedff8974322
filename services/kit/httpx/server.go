// Package httpx is the HTTP server every service runs: request ids, tracing, body limits, panic
// recovery and the probe endpoints (/healthz, /readyz, /debug/breakers), plus JSON helpers.
package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/logx"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

// Options configure a Server. Zero values take the noted defaults.
type Options struct {
	Service string
	Logger  *slog.Logger // default slog.Default()
	// MaxBodyBytes limits request bodies; larger ones get 413. Default 1 MiB.
	MaxBodyBytes int64
	// CheckTimeout bounds one readiness evaluation. Default 2s.
	CheckTimeout time.Duration
}

type check struct {
	name string
	fn   func(context.Context) error
}

// Server is an http.Server with the kit's middleware and probes. Routes go on Mux.
type Server struct {
	Mux *http.ServeMux

	opts     Options
	log      *slog.Logger
	mu       sync.RWMutex
	checks   []check
	draining atomic.Bool
	srv      *http.Server
	handler  http.Handler
}

// New builds a Server with /healthz, /readyz and /debug/breakers already routed.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 2 * time.Second
	}
	s := &Server{Mux: http.NewServeMux(), opts: opts, log: opts.Logger}
	s.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.Mux.HandleFunc("GET /readyz", s.serveReady)
	s.Mux.HandleFunc("GET /debug/breakers", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, client.Breakers())
	})
	s.handler = s.wrap(s.Mux)
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s
}

// AddCheck adds a readiness check; /readyz passes only when every check returns nil.
func (s *Server) AddCheck(name string, fn func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, check{name, fn})
}

// Ready runs every check and reports the failures, each prefixed with its name.
func (s *Server) Ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	results := s.runChecks(ctx)
	var failed []error
	for _, c := range results {
		if c.err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", c.name, c.err))
		}
	}
	return errors.Join(failed...)
}

type checkResult struct {
	name string
	err  error
}

func (s *Server) runChecks(ctx context.Context) []checkResult {
	s.mu.RLock()
	checks := append([]check(nil), s.checks...)
	s.mu.RUnlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
	defer cancel()
	out := make([]checkResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { out[i] = checkResult{c.name, c.fn(ctx)} })
	}
	wg.Wait()
	return out
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	body := map[string]any{"status": "ready"}
	if s.draining.Load() {
		WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "shutting_down"})
		return
	}
	checks := map[string]string{}
	for _, c := range s.runChecks(r.Context()) {
		if c.err != nil {
			checks[c.name] = c.err.Error()
			status = http.StatusServiceUnavailable
			body["status"] = "unready"
		} else {
			checks[c.name] = "ok"
		}
	}
	body["checks"] = checks
	WriteJSON(w, status, body)
}

// Handler is the full middleware chain over Mux, for httptest servers.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until Shutdown; it returns nil after a graceful shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// SetDraining makes /readyz fail from now on, ahead of Shutdown.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Shutdown stops accepting connections and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetDraining()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown http: %w", err)
	}
	return nil
}

func probe(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/debug/breakers"
}

// wrap builds tracing → request id + access log → panic recovery → body limit → mux.
func (s *Server) wrap(mux http.Handler) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		// ServeMux records the matched pattern on r; name the span after the route, not the path.
		if r.Pattern != "" {
			name := r.Pattern
			if !strings.Contains(name, " ") {
				name = r.Method + " " + name
			}
			trace.SpanFromContext(r.Context()).SetName(name)
		}
	})
	h := s.limitBody(inner)
	h = s.recoverPanic(h)
	h = s.requestID(h)
	return otelhttp.NewHandler(h, s.opts.Service,
		otelhttp.WithFilter(func(r *http.Request) bool { return !probe(r.URL.Path) }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.opts.MaxBodyBytes {
			WriteError(w, r, errs.TooLarge("body_too_large", fmt.Sprintf("request body exceeds %d bytes", s.opts.MaxBodyBytes)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, _ := w.(*statusWriter)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw == nil || sw.status == 0 {
				WriteJSON(w, http.StatusInternalServerError, errs.Internal("internal", "internal error").Body())
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validID(id) {
			id = newID()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := logx.WithRequestID(r.Context(), id)
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(sw, r.WithContext(ctx))
		if !probe(r.URL.Path) {
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			s.log.InfoContext(ctx, "request", "method", r.Method, "path", r.URL.Path, "status", status,
				"duration_ms", float64(time.Since(start).Microseconds())/1000)
		}
	})
}

func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers the status so the access log and panic recovery know what was sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines of the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
