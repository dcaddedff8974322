package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/msctl/msctl/services/gateway/ratelimit"
	"github.com/msctl/msctl/services/gateway/routes"
	"github.com/msctl/msctl/services/gateway/summary"
	"github.com/msctl/msctl/services/gateway/upstream"
	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/kit/httpx/httpxtest"
	"github.com/msctl/msctl/services/kit/registry"
)

// picker is a registry whose instances the test changes; the real registry
// is exercised by the integration tests.
type picker struct {
	mu    sync.Mutex
	addrs map[string]string
}

func (p *picker) Pick(service string) (registry.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.addrs[service]
	if !ok {
		return registry.Instance{}, fmt.Errorf("%w: %s", registry.ErrNoInstances, service)
	}
	return registry.Instance{ID: service + "-1", Service: service, Addr: a}, nil
}

func (p *picker) set(service, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if addr == "" {
		delete(p.addrs, service)
	} else {
		p.addrs[service] = addr
	}
}

const testRoutes = "/api/v1/auth=users:public,/api/v1/products=inventory:public,/api/v1/orders=orders:auth,/api/v1/notifications=notifications:auth"

type harness struct {
	t      *testing.T
	gw     *httptest.Server
	picker *picker
	key    ed25519.PrivateKey
	// verifier is the gateway's; the orders stand-in checks tokens with it
	// too, as the real orders does.
	verifier *auth.Verifier
	// seen holds the last request each upstream received.
	mu   sync.Mutex
	seen map[string]*http.Request
	body map[string][]byte
}

type options struct {
	rps            float64
	burst          int
	summaryTimeout time.Duration
	// upstreamTimeout bounds a proxied call; default 2s.
	upstreamTimeout time.Duration
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	if o.rps == 0 {
		o.rps, o.burst = 1000, 1000
	}
	if o.summaryTimeout == 0 {
		o.summaryTimeout = time.Second
	}
	if o.upstreamTimeout == 0 {
		o.upstreamTimeout = 2 * time.Second
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, picker: &picker{addrs: map[string]string{}}, key: key, seen: map[string]*http.Request{}, body: map[string][]byte{}}
	for _, svc := range []string{"users", "inventory", "orders", "payments", "notifications"} {
		h.start(svc)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	table, err := routes.Parse(testRoutes)
	if err != nil {
		t.Fatal(err)
	}
	pool := upstream.NewPool(h.picker, append(table.Services(), summary.Services...), client.Options{
		Timeout: o.upstreamTimeout, FailureThreshold: 3, OpenTimeout: 200 * time.Millisecond, RetryWait: time.Millisecond,
	})
	keys := auth.NewKeyCache(poolJWKS{pool}, time.Minute, log)
	h.verifier = auth.NewVerifier(keys, "msctl-users", "msctl")
	g := &Gateway{
		Routes:   table,
		Verifier: h.verifier,
		Limiter:  ratelimit.New(ratelimit.Options{RPS: o.rps, Burst: o.burst}),
		Upstream: pool,
		Summary:  summary.New(pool, o.summaryTimeout, log),
		Log:      log,
	}
	srv := httpx.New(httpx.Options{Service: "gateway", Logger: log})
	g.Register(srv.Mux)
	h.gw = httptest.NewServer(srv.Handler())
	t.Cleanup(h.gw.Close)
	return h
}

// start runs a stand-in upstream that records requests and answers like the
// real service would for the paths the gateway uses.
func (h *harness) start(svc string) *httptest.Server {
	pub := h.key.Public().(ed25519.PublicKey)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.seen[svc], h.body[svc] = r, body
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "X-Upstream-Secret")
		w.Header().Set("X-Upstream-Secret", "hop")
		w.Header().Set("X-Service", svc)
		switch {
		case r.URL.Path == "/.well-known/jwks.json":
			fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","alg":"EdDSA","use":"sig","x":%q}]}`, base64.RawURLEncoding.EncodeToString(pub))
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/orders/"):
			user, ok := h.verifier.User(w, r)
			if !ok {
				return
			}
			fmt.Fprintf(w, `{"id":%q,"user_id":%q,"status":"PENDING"}`, r.PathValue("x"), user)
		case r.URL.Path == "/internal/payments":
			fmt.Fprintf(w, `{"order_id":%q,"status":"CHARGED"}`, r.URL.Query().Get("order_id"))
		case strings.HasPrefix(r.URL.Path, "/internal/users/"):
			fmt.Fprint(w, `{"id":"u1","email":"a@example.com","name":"A"}`)
		case r.URL.Path == "/api/v1/notifications":
			fmt.Fprint(w, `[]`)
		default:
			w.WriteHeader(http.StatusTeapot)
			fmt.Fprintf(w, `{"service":%q,"method":%q}`, svc, r.Method)
		}
	}))
	h.t.Cleanup(s.Close)
	h.picker.set(svc, s.Listener.Addr().String())
	return s
}

// poolJWKS fetches the users stand-in's key set through the gateway's pool.
type poolJWKS struct{ pool *upstream.Pool }

func (p poolJWKS) FetchJWKS(ctx context.Context) ([]byte, error) {
	_, body, err := p.pool.Get(ctx, "users", "/.well-known/jwks.json", "")
	return body, err
}

func (h *harness) token(sub string, mutate func(jwt.MapClaims)) string {
	claims := jwt.MapClaims{"sub": sub, "iss": "msctl-users", "aud": "msctl", "exp": time.Now().Add(time.Hour).Unix()}
	if mutate != nil {
		mutate(claims)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(h.key)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) do(method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.gw.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.gw.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

func (h *harness) lastRequest(svc string) (*http.Request, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[svc], h.body[svc]
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("body %q is not an error JSON: %v", body, err)
	}
	return e.Error.Code
}

func TestProxyForwardsRequest(t *testing.T) {
	h := newHarness(t, options{})
	token := "Bearer " + h.token("u1", nil)
	hdr := http.Header{
		"Authorization":       {token},
		"X-Request-Id":        {"req-123"},
		"Traceparent":         {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Connection":          {"X-Drop-Me"},
		"X-Drop-Me":           {"1"},
		"Proxy-Authorization": {"secret"},
		"Content-Type":        {"application/json"},
		"Idempotency-Key":     {"k-1"},
	}
	resp, body := h.do(http.MethodPost, "/api/v1/orders?x=1&y=%2F", strings.NewReader(`{"items":[]}`), hdr)
	if resp.StatusCode != http.StatusTeapot || !strings.Contains(string(body), `"method":"POST"`) {
		t.Fatalf("status %d body %s; want the upstream's 418", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Service") != "orders" || resp.Header.Get("X-Upstream-Secret") != "" {
		t.Fatalf("response headers %v: want X-Service kept and hop-by-hop dropped", resp.Header)
	}
	if resp.Header.Get("X-Request-ID") != "req-123" {
		t.Fatalf("response request id = %q", resp.Header.Get("X-Request-ID"))
	}
	r, got := h.lastRequest("orders")
	checks := map[string]string{
		"path":            r.URL.Path,
		"query":           r.URL.RawQuery,
		"body":            string(got),
		"Authorization":   r.Header.Get("Authorization"),
		"X-Request-ID":    r.Header.Get("X-Request-ID"),
		"X-Drop-Me":       r.Header.Get("X-Drop-Me"),
		"Proxy-Auth":      r.Header.Get("Proxy-Authorization"),
		"Idempotency-Key": r.Header.Get("Idempotency-Key"),
		"trace id":        strings.Split(r.Header.Get("Traceparent")+"--", "-")[1],
	}
	want := map[string]string{
		"path": "/api/v1/orders", "query": "x=1&y=%2F", "body": `{"items":[]}`, "Authorization": token,
		"X-Request-ID": "req-123", "X-Drop-Me": "", "Proxy-Auth": "", "Idempotency-Key": "k-1",
		"trace id": "0af7651916cd43dd8448eb211c80319c",
	}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("upstream saw %s = %q, want %q", k, checks[k], w)
		}
	}
}

func TestPublicRouteGetsARequestID(t *testing.T) {
	h := newHarness(t, options{})
	resp, _ := h.do(http.MethodGet, "/api/v1/products?limit=2", nil, nil)
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r, _ := h.lastRequest("inventory")
	if r.URL.RawQuery != "limit=2" {
		t.Fatalf("inventory saw query %q", r.URL.RawQuery)
	}
	if r.Header.Get("X-Request-ID") == "" {
		t.Fatal("no request id generated for the upstream")
	}
}

func TestNotRouted(t *testing.T) {
	h := newHarness(t, options{})
	for _, p := range []string{"/internal/users/u1", "/api/v2/x", "/api/v1/productsx", "/nope", "/api/v1/products/%2e%2e/%2e%2e/%2e%2e/internal/users/1"} {
		resp, body := h.do(http.MethodGet, p, nil, nil)
		if resp.StatusCode == http.StatusMovedPermanently {
			// ServeMux cleans dot segments by redirecting; the target must not be routed either.
			resp, body = h.do(http.MethodGet, resp.Header.Get("Location"), nil, nil)
		}
		if resp.StatusCode != http.StatusNotFound || errorCode(t, body) != "not_found" {
			t.Errorf("GET %s = %d %s, want 404 not_found", p, resp.StatusCode, body)
		}
	}
	if r, _ := h.lastRequest("users"); r != nil {
		t.Fatalf("users received %s", r.URL)
	}
}

func TestUnauthorized(t *testing.T) {
	h := newHarness(t, options{})
	tests := []struct{ name, header string }{
		{"missing", ""},
		{"garbage", "Bearer x.y.z"},
		{"expired", "Bearer " + h.token("u1", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })},
		{"10 KB", "Bearer " + strings.Repeat("A", 10<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{}
			if tt.header != "" {
				hdr.Set("Authorization", tt.header)
			}
			resp, body := h.do(http.MethodGet, "/api/v1/orders", nil, hdr)
			if resp.StatusCode != http.StatusUnauthorized || errorCode(t, body) != "unauthorized" {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if r, _ := h.lastRequest("orders"); r != nil {
		t.Fatal("an unauthenticated request reached orders")
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, options{rps: 1, burst: 5})
	hot := http.Header{"Authorization": {"Bearer " + h.token("hot", nil)}}
	cold := http.Header{"Authorization": {"Bearer " + h.token("cold", nil)}}
	limited := 0
	for range 10 {
		resp, body := h.do(http.MethodGet, "/api/v1/orders/1", nil, hot)
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			if errorCode(t, body) != "rate_limited" || resp.Header.Get("Retry-After") < "1" {
				t.Fatalf("429 without code or Retry-After: %v %s", resp.Header, body)
			}
		}
	}
	if limited < 4 {
		t.Fatalf("%d of 10 requests limited at twice the burst, want ≥ 4", limited)
	}
	if resp, _ := h.do(http.MethodGet, "/api/v1/orders/1", nil, cold); resp.StatusCode != http.StatusOK {
		t.Fatalf("second client got %d", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	h := newHarness(t, options{})
	big := bytes.Repeat([]byte("a"), 1<<20+1)
	resp, body := h.do(http.MethodPost, "/api/v1/auth/signup", bytes.NewReader(big), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(t, body) != "body_too_large" {
		t.Fatalf("with length: %d %s", resp.StatusCode, body)
	}
	// Without a Content-Length the limit is hit while reading.
	resp, body = h.do(http.MethodPost, "/api/v1/auth/signup", io.MultiReader(bytes.NewReader(big)), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(t, body) != "body_too_large" {
		t.Fatalf("chunked: %d %s", resp.StatusCode, body)
	}
}

func breakerState(t *testing.T, h *harness, name string) string {
	t.Helper()
	_, body := h.do(http.MethodGet, "/debug/breakers", nil, nil)
	var list []client.BreakerStatus
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("breakers: %v (%s)", err, body)
	}
	for _, b := range list {
		if b.Name == name {
			return b.State
		}
	}
	t.Fatalf("no breaker %q in %s", name, body)
	return ""
}

func TestUpstreamDownAndBack(t *testing.T) {
	h := newHarness(t, options{})
	h.picker.set("inventory", "")
	resp, body := h.do(http.MethodGet, "/api/v1/products", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || errorCode(t, body) != "upstream_unavailable" {
		t.Fatalf("no instance: %d %s", resp.StatusCode, body)
	}

	// A registered but dead instance trips the breaker.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	h.picker.set("inventory", dead.Listener.Addr().String())
	for i := 0; i < 10 && breakerState(t, h, "inventory") != "open"; i++ {
		if resp, _ := h.do(http.MethodGet, "/api/v1/products", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("dead upstream answered %d", resp.StatusCode)
		}
	}
	if s := breakerState(t, h, "inventory"); s != "open" {
		t.Fatalf("breaker %s after repeated failures", s)
	}
	resp, body = h.do(http.MethodGet, "/api/v1/products", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "breaker") {
		t.Fatalf("open breaker: %d %s", resp.StatusCode, body)
	}

	// Back: after the open timeout a probe succeeds and the breaker closes.
	h.start("inventory")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, _ := h.do(http.MethodGet, "/api/v1/products", nil, nil); resp.StatusCode == http.StatusTeapot {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := breakerState(t, h, "inventory"); s != "closed" {
		t.Fatalf("breaker %s after inventory returned", s)
	}
}

// TestProxyBrokenUpstream covers upstreams that fail once the exchange has begun: one that does not
// answer in time gets a 504, and one whose answer breaks off after the status went out makes the
// gateway drop the client's connection, the only way left to say the answer is incomplete once
// the status may be out.
func TestProxyBrokenUpstream(t *testing.T) {
	h := newHarness(t, options{upstreamTimeout: 200 * time.Millisecond})
	release := make(chan struct{})
	defer close(release)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/products/slow":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/api/v1/products/truncated":
			// A chunked answer cut off before its last chunk: had the gateway ended its own
			// answer normally, the client would take the part for the whole.
			_, _ = w.Write([]byte("0123456789"))
			rc := http.NewResponseController(w)
			_ = rc.Flush()
			if conn, _, err := rc.Hijack(); err == nil {
				conn.Close()
			}
		}
	}))
	t.Cleanup(up.Close)
	h.picker.set("inventory", up.Listener.Addr().String())

	resp, body := h.do(http.MethodGet, "/api/v1/products/slow", nil, nil)
	if resp.StatusCode != http.StatusGatewayTimeout || errorCode(t, body) != "upstream_timeout" {
		t.Fatalf("slow upstream: %d %s, want 504 upstream_timeout", resp.StatusCode, body)
	}

	// A short answer may not have left the gateway's buffer when it breaks off, so the client
	// sees the cut either before the status or in the body; never a complete-looking answer.
	resp, err := h.gw.Client().Get(h.gw.URL + "/api/v1/products/truncated")
	var got []byte
	if err == nil {
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatalf("truncated answer arrived as %d %q; want the connection dropped", resp.StatusCode, got)
	}
}

func TestSummary(t *testing.T) {
	h := newHarness(t, options{summaryTimeout: 500 * time.Millisecond})
	auth := http.Header{"Authorization": {"Bearer " + h.token("u1", nil)}}
	resp, body := h.do(http.MethodGet, "/api/v1/orders/o1/summary", nil, auth)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("summary: %d %s", resp.StatusCode, body)
	}
	var s struct {
		Order         map[string]any `json:"order"`
		Payment       map[string]any `json:"payment"`
		User          map[string]any `json:"user"`
		Notifications []any          `json:"notifications"`
		Degraded      []string       `json:"degraded"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Order["user_id"] != "u1" || s.Payment["order_id"] != "o1" || s.User["id"] != "u1" || s.Notifications == nil || len(s.Degraded) != 0 {
		t.Fatalf("summary %s", body)
	}

	h.picker.set("payments", "")
	resp, body = h.do(http.MethodGet, "/api/v1/orders/o1/summary", nil, auth)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"degraded":["payment"]`) {
		t.Fatalf("payments gone: %d %s", resp.StatusCode, body)
	}

	h.picker.set("orders", "")
	resp, body = h.do(http.MethodGet, "/api/v1/orders/o1/summary", nil, auth)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("orders gone: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.do(http.MethodGet, "/api/v1/orders/o1/summary", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("summary without token: %d", resp.StatusCode)
	}
}

func TestSummaryOrderNotFound(t *testing.T) {
	h := newHarness(t, options{})
	notFound := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"order not found"}}`)
	}))
	defer notFound.Close()
	h.picker.set("orders", notFound.Listener.Addr().String())
	resp, body := h.do(http.MethodGet, "/api/v1/orders/o1/summary", nil, http.Header{"Authorization": {"Bearer " + h.token("u1", nil)}})
	if resp.StatusCode != http.StatusNotFound || errorCode(t, body) != "not_found" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// The gateway's root span is named after the route it matched — the routed prefix or its own
// summary route — not the catch-all pattern "/" the proxy sits on; an unrouted path after its
// method alone.
func TestRootSpanNamedAfterMatchedRoute(t *testing.T) {
	rec := httpxtest.RecordSpans(t)
	h := newHarness(t, options{})
	auth := http.Header{"Authorization": {"Bearer " + h.token("u1", nil)}}
	h.do(http.MethodPost, "/api/v1/orders", strings.NewReader(`{}`), auth)
	h.do(http.MethodGet, "/api/v1/orders/o1", nil, auth)
	h.do(http.MethodGet, "/api/v1/orders/o1/summary", nil, auth)
	h.do(http.MethodGet, "/api/v2/x", nil, nil)
	want := [][2]string{
		{"POST /api/v1/orders", "/api/v1/orders"},
		{"GET /api/v1/orders", "/api/v1/orders"},
		{"GET /api/v1/orders/{id}/summary", "/api/v1/orders/{id}/summary"},
		{"GET", ""},
	}
	if got := httpxtest.ServerSpans(rec); !slices.Equal(got, want) {
		t.Fatalf("server spans (name, http.route) = %q, want %q", got, want)
	}
}
