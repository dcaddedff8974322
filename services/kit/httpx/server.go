// Package httpx is the HTTP server every service runs: request ids, tracing, access logs, body
// limits, panic recovery and the probe endpoints (/healthz, /readyz, /debug/breakers), plus JSON helpers.
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

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/logx"
	"github.com/msctl/msctl/services/kit/metrics"
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
	// onReady runs before a passing /readyz answers (SetOnReady).
	onReady atomic.Pointer[func(context.Context)]
	// accessCount picks the sampled access log lines.
	accessCount atomic.Uint64
	srv         *http.Server
	handler     http.Handler
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
	if fn := s.onReady.Load(); status == http.StatusOK && fn != nil {
		(*fn)(r.Context())
	}
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

// SetOnReady makes a passing /readyz run fn before it answers. kit.Run
// registers the instance there: whoever gates on /readyz (the orchestrator
// replacing a service's instances one at a time) then finds it registered,
// rather than stopping the last registered instance while this one is
// ready but not yet in the registry.
func (s *Server) SetOnReady(fn func(context.Context)) { s.onReady.Store(&fn) }

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
	return path == "/healthz" || path == "/readyz" || path == "/debug/breakers" || path == MetricsPath
}

// MetricsPath is where a service serves its metrics in Prometheus text format (HandleMetrics).
const MetricsPath = "/metrics"

// HandleMetrics serves h (kit/metrics' Prometheus handler) as GET /metrics.
func (s *Server) HandleMetrics(h http.Handler) { s.Mux.Handle("GET "+MetricsPath, h) }

// wrap puts the kit's middleware in front of mux as one handler, so a request costs one context,
// one request copy and one response wrapper however many concerns there are: tracing, request id,
// access log, panic recovery and the body limit.
func (s *Server) wrap(mux http.Handler) http.Handler {
	tracer := otel.Tracer("github.com/msctl/msctl/services/kit/httpx")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !validID(id) {
			id = newID()
		}
		w.Header()[canonicalRequestID] = []string{id}
		if s.draining.Load() {
			// Shutting down: a kept-alive connection would soon be closed
			// under a client about to reuse it, failing a request it may
			// not retry. Close it after this answer instead.
			w.Header().Set("Connection", "close")
		}
		ctx := logx.WithRequestID(r.Context(), id)
		// Probes and scrapes are neither traced, logged nor measured: they would drown the real
		// traffic.
		traced := !probe(r.URL.Path)
		span := trace.SpanFromContext(ctx)
		if traced {
			ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
			// The span is named once the route is known; the method alone costs nothing meanwhile.
			ctx, span = tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
		}
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v != nil && v != http.ErrAbortHandler {
				s.log.ErrorContext(ctx, "panic serving request", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					WriteJSON(sw, http.StatusInternalServerError, errs.Internal("internal", "internal error").Body())
				}
			}
			if traced {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				d := time.Since(start)
				route := routeOf(sw, r)
				endServerSpan(span, route, r, status)
				metrics.HTTPServer(ctx, r.Method, route, status, d)
				s.access(ctx, r, status, d)
			}
			if v == http.ErrAbortHandler {
				// The server drops the connection without logging a stack.
				panic(v)
			}
		}()
		if r.ContentLength > s.opts.MaxBodyBytes {
			WriteError(sw, r, errs.TooLarge("body_too_large", fmt.Sprintf("request body exceeds %d bytes", s.opts.MaxBodyBytes)))
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxBodyBytes)
		mux.ServeHTTP(sw, r)
	})
}

// routeOf is the route that served the request, never the raw path (ids in paths would make every
// request its own span name and series): the route a handler set with SetRoute, else the ServeMux
// pattern (recorded on r once it routed). "" when no route matched (404, or a handler saying so
// with SetRoute(w, "")).
func routeOf(sw *statusWriter, r *http.Request) string {
	if sw.routeSet {
		return sw.route
	}
	return patternPath(r.Pattern)
}

// endServerSpan names the span after the route; a request no route matched is named after its
// method alone, as OpenTelemetry's HTTP conventions ask. Only 5xx answers are errors of the server.
func endServerSpan(span trace.Span, route string, r *http.Request, status int) {
	if span.IsRecording() {
		name := r.Method
		if route != "" {
			name += " " + route
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		span.SetName(name)
		span.SetAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path),
			semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// patternPath is the path of a ServeMux pattern ("[METHOD ][HOST]/PATH", neither method nor host
// holds a '/'): http.route is the path template alone, the method has an attribute of its own.
func patternPath(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		return pattern[i:]
	}
	return pattern
}

// SetRoute names the route that serves the request when the mux pattern says too little, e.g. a
// catch-all proxy that matches its own table: the server span is named "METHOD route" and carries
// it as http.route. An empty route says no route matched. w is the writer the handler was given.
func SetRoute(w http.ResponseWriter, route string) {
	for w != nil {
		if sw, ok := w.(*statusWriter); ok {
			sw.route, sw.routeSet = route, true
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

const (
	// slowRequest answers are always logged at info level.
	slowRequest = 500 * time.Millisecond
	// accessSample: one in this many fast, successful requests is logged at info level; every
	// one is at debug level. A line per request costs a proxy more than the proxying itself.
	accessSample = 100
)

// access writes the access log line: always at debug level; at info level for failures, slow
// answers and one in accessSample of the rest, marked with the sampling rate.
func (s *Server) access(ctx context.Context, r *http.Request, status int, d time.Duration) {
	level, sampled := slog.LevelDebug, false
	switch {
	case status >= 400 || d >= slowRequest:
		level = slog.LevelInfo
	case s.accessCount.Add(1)%accessSample == 0:
		level, sampled = slog.LevelInfo, true
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := [5]slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	}
	n := 4
	if sampled {
		attrs[4], n = slog.Int("sampled_1_in", accessSample), 5
	}
	s.log.LogAttrs(ctx, level, "request", attrs[:n]...)
}

func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// canonicalRequestID is RequestIDHeader as http.Header keys it.
var canonicalRequestID = http.CanonicalHeaderKey(RequestIDHeader)

// Request ids are a random per-process prefix and a counter: unique across instances without a
// random read per request.
var (
	idPrefix  = randomHex(6)
	idCounter atomic.Uint64
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const hexDigits = "0123456789abcdef"

// newID is 24 hex digits: the 12 of the process prefix and 12 of the counter.
func newID() string {
	var b [24]byte
	copy(b[:], idPrefix)
	n := idCounter.Add(1)
	for i := len(b) - 1; i >= len(idPrefix); i-- {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// statusWriter remembers the status so the access log and panic recovery know what was sent.
type statusWriter struct {
	http.ResponseWriter
	status int
	// route and routeSet are what the handler said with SetRoute.
	route    string
	routeSet bool
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
