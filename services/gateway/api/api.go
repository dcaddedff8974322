// Package api is the gateway's HTTP surface: route matching, authentication,
// rate limiting and proxying for every routed prefix, plus the order summary.
package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/msctl/msctl/services/gateway/ratelimit"
	"github.com/msctl/msctl/services/gateway/routes"
	"github.com/msctl/msctl/services/gateway/summary"
	"github.com/msctl/msctl/services/gateway/upstream"
	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/httpx"
)

// Verifier checks an Authorization header and returns the user id.
type Verifier interface {
	Verify(ctx context.Context, authorization string) (string, error)
}

// Limiter admits or rejects a request of one client.
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// Forwarder proxies a request to a service.
type Forwarder interface {
	Forward(in *http.Request, service string) (*http.Response, error)
}

// Summarizer builds an order summary for a user.
type Summarizer interface {
	Build(ctx context.Context, orderID, userID, authorization string) (*summary.Summary, error)
}

var (
	_ Verifier   = (*auth.Verifier)(nil)
	_ Limiter    = (*ratelimit.Limiter)(nil)
	_ Forwarder  = (*upstream.Pool)(nil)
	_ Summarizer = (*summary.Aggregator)(nil)
)

// Gateway holds the collaborators of the handlers.
type Gateway struct {
	Routes   *routes.Table
	Verifier Verifier
	Limiter  Limiter
	Upstream Forwarder
	Summary  Summarizer
	Log      *slog.Logger
}

// Register routes the gateway on mux. The catch-all leaves the more specific
// kit routes (/healthz, /readyz, /debug/breakers) alone.
func (g *Gateway) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/orders/{id}/summary", g.serveSummary)
	mux.HandleFunc("/", g.serveProxy)
}

func (g *Gateway) serveProxy(w http.ResponseWriter, r *http.Request) {
	route, ok := g.Routes.Match(r.URL.Path)
	if !ok {
		httpx.SetRoute(w, "")
		httpx.WriteError(w, r, errs.NotFound("not_found", "no route for "+r.URL.Path))
		return
	}
	// The trace is named after the routed prefix, not the catch-all pattern this handler sits on.
	httpx.SetRoute(w, route.Prefix)
	if _, ok := g.admit(w, r, route.Access == routes.Auth); !ok {
		return
	}
	resp, err := g.Upstream.Forward(r, route.Service)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	defer resp.Body.Close()
	upstream.CopyHeader(w.Header(), resp.Header)
	// HEAD, 204 and 304 answers carry no body, so their length is not ours to state.
	hasBody := r.Method != http.MethodHead && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified
	if hasBody && resp.ContentLength >= 0 {
		w.Header()["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	w.WriteHeader(resp.StatusCode)
	if !hasBody {
		return
	}
	buf := copyBufs.Get().(*[]byte)
	_, err = io.CopyBuffer(w, resp.Body, *buf)
	copyBufs.Put(buf)
	if err != nil {
		// The status is out; cutting the connection is the only way left to tell the client
		// the answer is incomplete.
		g.Log.DebugContext(r.Context(), "copy proxied answer", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// copyBufs hold the buffers answers are streamed through, so a proxied request does not allocate one.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (g *Gateway) serveSummary(w http.ResponseWriter, r *http.Request) {
	userID, ok := g.admit(w, r, true)
	if !ok {
		return
	}
	s, err := g.Summary.Build(r.Context(), r.PathValue("id"), userID, r.Header.Get("Authorization"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s)
}

// admit authenticates (when required) and rate-limits a request, answering
// it itself when it may not proceed. The client is the user when a valid token
// is present, else the peer IP. Limiting comes before reporting a bad token,
// so a flood of forged tokens is throttled per IP like any other traffic.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, needAuth bool) (string, bool) {
	var (
		userID  string
		authErr error
	)
	if needAuth {
		userID, authErr = g.Verifier.Verify(r.Context(), r.Header.Get("Authorization"))
	}
	key := "ip:" + upstream.ClientIP(r)
	if userID != "" {
		key = "user:" + userID
	}
	if ok, wait := g.Limiter.Allow(key); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
		httpx.WriteError(w, r, errs.TooManyRequests("rate_limited", "too many requests, retry later"))
		return "", false
	}
	if authErr != nil {
		g.unauthorized(w, r, authErr)
		return "", false
	}
	return userID, true
}

func (g *Gateway) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	g.Log.DebugContext(r.Context(), "unauthorized", "path", r.URL.Path, "err", err)
	auth.WriteUnauthorized(w, r, err)
}
