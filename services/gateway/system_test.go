package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/systest"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit"
	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/registry"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// system is the gateway in-process in front of real users and inventory
// binaries, real Postgres and a real etcd registry. Orders, payments and
// notifications are stand-ins registered in the same etcd: they exist to show
// what the gateway sends them.
type system struct {
	t        *testing.T
	gw       string // http://host:port
	etcd     *clientv3.Client
	env      []string
	bins     map[string]string
	usersDSN string
	invDSN   string

	mu        sync.Mutex
	lastAuth  string // Authorization the orders stand-in saw last
	payHang   time.Duration
	standins  map[string]context.CancelFunc
	inventory *testenv.Proc
}

const systemRoutes = "/api/v1/auth=users:public,/api/v1/products=inventory:public,/api/v1/orders=orders:auth,/api/v1/notifications=notifications:auth"

func TestSystem(t *testing.T) {
	testenv.SkipShort(t, "builds and runs service binaries")
	s := &system{t: t, standins: map[string]context.CancelFunc{}}
	e := testenv.Etcd(t)
	s.usersDSN = testenv.Database(t, "users")
	s.invDSN = testenv.Database(t, "inventory")
	s.etcd = testenv.EtcdClient(t, e)
	s.env = []string{
		"ETCD_ENDPOINTS=" + strings.Join(e.Endpoints(), ","),
		"HTTP_ADDR=127.0.0.1:0",
		"REGISTRY_TTL=2s",
		"LOG_LEVEL=warn",
		"SHUTDOWN_TIMEOUT=2s",
	}
	bins := systest.Build(t, "users", "inventory")
	s.bins = map[string]string{"users": bins[0], "inventory": bins[1]}
	s.start("users", "DATABASE_URL="+s.usersDSN, "BCRYPT_COST=4")
	s.inventory = s.start("inventory", "DATABASE_URL="+s.invDSN)
	s.standIn("orders")
	s.standIn("payments")
	s.standIn("notifications")
	s.startGateway()

	t.Run("signup, login, token through the gateway", s.testLogin)
	t.Run("forged and broken tokens get 401", s.testForgedTokens)
	t.Run("rate limit per client", s.testRateLimit)
	t.Run("summary degrades without payments", s.testSummary)
	t.Run("inventory down opens its breaker and recovers", s.testBreaker)
}

// start runs a service binary and waits until it is in the registry.
func (s *system) start(name string, env ...string) *testenv.Proc {
	s.t.Helper()
	cmd := exec.Command(s.bins[name])
	cmd.Env = append(append(append(os.Environ(), s.env...), "SERVICE_NAME="+name), env...)
	p := testenv.StartProc(s.t, name, cmd, syscall.SIGTERM)
	s.waitRegistered(name, 1, p)
	return p
}

func (s *system) waitRegistered(service string, n int, p *testenv.Proc) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.etcd.Get(context.Background(), registry.ServicePrefix(service), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count >= int64(n) {
			return
		}
		if p != nil {
			if p.Exited() {
				s.t.Fatalf("%s exited:\n%s", service, p.Output())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s did not register", service)
}

// standIn registers an HTTP server under service that answers the paths the
// gateway uses with canned JSON.
func (s *system) standIn(service string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case service == "orders":
			s.mu.Lock()
			s.lastAuth = r.Header.Get("Authorization")
			s.mu.Unlock()
			id := strings.TrimPrefix(r.URL.Path, "/api/v1/orders/")
			if id == "missing" {
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"error":{"code":"not_found","message":"order not found"}}`)
				return
			}
			fmt.Fprintf(w, `{"id":%q,"user_id":%q,"status":"CONFIRMED","items":[],"total_cents":0,"created_at":"2024-01-01T00:00:00Z"}`, id, "u1")
		case service == "payments":
			s.mu.Lock()
			hang := s.payHang
			s.mu.Unlock()
			select {
			case <-time.After(hang):
			case <-r.Context().Done():
				return
			}
			fmt.Fprintf(w, `{"order_id":%q,"status":"CHARGED","amount_cents":0}`, r.URL.Query().Get("order_id"))
		default:
			fmt.Fprint(w, `[]`)
		}
	}))
	s.t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	reg := registry.NewRegistrar(s.etcd, registry.Instance{ID: service + "-standin", Service: service, Addr: srv.Listener.Addr().String()},
		2*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		reg.Run(ctx, func(context.Context) error { return nil }, 200*time.Millisecond)
	}()
	s.standins[service] = func() { cancel(); <-done }
	s.t.Cleanup(s.standins[service])
	s.waitRegistered(service, 1, nil)
}

func (s *system) startGateway() {
	port, err := freeport.Get()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, kv := range append(s.env,
		"SERVICE_NAME=gateway",
		fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port),
		"GATEWAY_ROUTES="+systemRoutes,
		"RATE_LIMIT_RPS=40",
		"RATE_LIMIT_BURST=40",
		"BREAKER_OPEN_TIMEOUT=1s",
		"UPSTREAM_TIMEOUT=3s",
		"JWKS_MIN_REFRESH=1s",
		"SUMMARY_TIMEOUT=800ms",
	) {
		k, v, _ := strings.Cut(kv, "=")
		s.t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kit.RunContext(ctx, "gateway", nil, setup) }()
	s.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("gateway: %v", err)
		}
	})
	s.gw = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.gw + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			s.t.Fatalf("gateway exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.t.Fatal("gateway not ready")
}

// call sends a request through the gateway from the given source IP, with
// token as the whole Authorization header (unless empty).
func (s *system) call(from, method, path, token string, body any) (int, http.Header, []byte) {
	s.t.Helper()
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", token)
	}
	api := testenv.API{T: s.t, Base: s.gw, Client: clientFrom(from)}
	r := api.Call(method, path, "", hdr, body)
	return r.Status, r.Header, r.Body
}

var (
	clientsMu sync.Mutex
	clients   = map[string]*http.Client{}
)

// clientFrom dials from a loopback source address, so one test process can
// be several clients to the per-IP rate limiter.
func clientFrom(ip string) *http.Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[ip]; ok {
		return c
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}}
	clients[ip] = c
	return c
}

func (s *system) login(email string) (token, userID string) {
	s.t.Helper()
	st, _, body := s.call("127.0.0.1", http.MethodPost, "/api/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "name": "Test"})
	if st != http.StatusCreated {
		s.t.Fatalf("signup: %d %s", st, body)
	}
	var created struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &created)
	st, _, body = s.call("127.0.0.1", http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse battery"})
	if st != http.StatusOK {
		s.t.Fatalf("login: %d %s", st, body)
	}
	var tok struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" || tok.ExpiresAt == "" {
		s.t.Fatalf("login body %s: %v", body, err)
	}
	return "Bearer " + tok.Token, created.ID
}

func (s *system) testLogin(t *testing.T) {
	tok, id := s.login("alice@example.com")
	if st, _, _ := s.call("127.0.0.1", http.MethodPost, "/api/v1/auth/signup", "", map[string]string{"email": "alice@example.com", "password": "correct horse battery", "name": "A"}); st != http.StatusConflict {
		t.Errorf("duplicate signup: %d, want 409", st)
	}
	st, _, body := s.call("127.0.0.1", http.MethodGet, "/api/v1/products", "", nil)
	var products []map[string]any
	if st != http.StatusOK || json.Unmarshal(body, &products) != nil || len(products) == 0 {
		t.Fatalf("products: %d %s", st, body)
	}
	st, _, body = s.call("127.0.0.1", http.MethodGet, "/api/v1/orders/o1", tok, nil)
	if st != http.StatusOK {
		t.Fatalf("authenticated route: %d %s", st, body)
	}
	// The customer's own token reaches orders, which verifies it itself.
	s.mu.Lock()
	seen := s.lastAuth
	s.mu.Unlock()
	if seen != tok {
		t.Fatalf("orders saw Authorization %q, want the customer's token", seen)
	}
	if st, _, _ := s.call("127.0.0.1", http.MethodGet, "/internal/users/"+id, "", nil); st != http.StatusNotFound {
		t.Fatalf("/internal routed: %d", st)
	}
}

// signingKey reads the users service's current key from its database, so the
// test can mint tokens that are correctly signed but wrong in one claim.
func (s *system) signingKey(t *testing.T) (string, ed25519.PrivateKey) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.usersDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var (
		kid  string
		seed []byte
	)
	if err := conn.QueryRow(ctx, `SELECT kid, seed FROM signing_keys ORDER BY created_at DESC LIMIT 1`).Scan(&kid, &seed); err != nil {
		t.Fatalf("read signing key: %v", err)
	}
	return kid, ed25519.NewKeyFromSeed(seed)
}

func (s *system) testForgedTokens(t *testing.T) {
	kid, key := s.signingKey(t)
	pub := key.Public().(ed25519.PublicKey)
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "someone", "iss": "msctl-users", "aud": "msctl", "exp": now.Add(time.Hour).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	mint := func(m jwt.SigningMethod, k any, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"] = kid
		str, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + str
	}
	// The control: a token minted the same way with nothing wrong passes.
	if st, _, body := s.call("127.0.0.1", http.MethodGet, "/api/v1/orders/o1", mint(jwt.SigningMethodEdDSA, key, kid, claims(nil)), nil); st != http.StatusOK {
		t.Fatalf("control token: %d %s", st, body)
	}
	tests := map[string]string{
		"alg none":           mint(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claims(nil)),
		"HS256 with pub key": mint(jwt.SigningMethodHS256, []byte(pub), kid, claims(nil)),
		"expired":            mint(jwt.SigningMethodEdDSA, key, kid, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })),
		"missing exp":        mint(jwt.SigningMethodEdDSA, key, kid, claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"future nbf":         mint(jwt.SigningMethodEdDSA, key, kid, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })),
		"wrong aud":          mint(jwt.SigningMethodEdDSA, key, kid, claims(func(c jwt.MapClaims) { c["aud"] = "someone-else" })),
		"wrong iss":          mint(jwt.SigningMethodEdDSA, key, kid, claims(func(c jwt.MapClaims) { c["iss"] = "evil" })),
		"unknown kid":        mint(jwt.SigningMethodEdDSA, key, "no-such-kid", claims(nil)),
		"malformed":          "Bearer eyJhbGciOiJFZERTQSJ9.%%%.xyz",
		"10 KB header":       "Bearer " + strings.Repeat("A", 10<<10),
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			st, h, body := s.call("127.0.0.1", http.MethodGet, "/api/v1/orders/o1", tok, nil)
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			if st != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.Error.Code != "unauthorized" || h.Get("WWW-Authenticate") == "" {
				t.Fatalf("%d %v %s; want 401 unauthorized with WWW-Authenticate", st, h, body)
			}
		})
	}
	// No panic anywhere: the gateway still serves.
	if st, _, _ := s.call("127.0.0.1", http.MethodGet, "/healthz", "", nil); st != http.StatusOK {
		t.Fatalf("gateway unhealthy after bad tokens: %d", st)
	}
}

func (s *system) testRateLimit(t *testing.T) {
	const burst = 40 // RATE_LIMIT_BURST
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		wg     sync.WaitGroup
		work   = make(chan struct{}, 2*burst)
	)
	for range 2 * burst {
		work <- struct{}{}
	}
	close(work)
	for range 8 {
		wg.Go(func() {
			for range work {
				st, h, _ := s.call("127.0.0.2", http.MethodGet, "/api/v1/products", "", nil)
				if st == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				mu.Lock()
				counts[st]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if counts[http.StatusTooManyRequests] == 0 || counts[http.StatusOK] < burst/2 || counts[http.StatusOK]+counts[http.StatusTooManyRequests] != 2*burst {
		t.Fatalf("burst at twice the limit: %v", counts)
	}
	for range 5 {
		if st, _, body := s.call("127.0.0.3", http.MethodGet, "/api/v1/products", "", nil); st != http.StatusOK {
			t.Fatalf("second client: %d %s", st, body)
		}
	}
}

func (s *system) testSummary(t *testing.T) {
	tok, _ := s.login("bob@example.com")
	get := func(id string) (int, map[string]json.RawMessage, time.Duration) {
		start := time.Now()
		st, _, body := s.call("127.0.0.1", http.MethodGet, "/api/v1/orders/"+id+"/summary", tok, nil)
		var m map[string]json.RawMessage
		if st == http.StatusOK {
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("summary %s: %v", body, err)
			}
		}
		return st, m, time.Since(start)
	}
	st, m, _ := get("o7")
	if st != http.StatusOK || string(m["degraded"]) != "[]" || !strings.Contains(string(m["user"]), "bob@example.com") || string(m["payment"]) == "null" {
		t.Fatalf("full summary: %d %v", st, m)
	}
	if st, _, _ := get("missing"); st != http.StatusNotFound {
		t.Fatalf("missing order: %d", st)
	}

	// Payments too slow: the summary still answers by its deadline.
	s.mu.Lock()
	s.payHang = 5 * time.Second
	s.mu.Unlock()
	st, m, took := get("o7")
	if st != http.StatusOK || string(m["degraded"]) != `["payment"]` || string(m["payment"]) != "null" {
		t.Fatalf("slow payments: %d %v", st, m)
	}
	if took >= 3*time.Second {
		t.Fatalf("summary took %v with a 800ms deadline", took)
	}

	// Payments fast again, then stopped: gone from the registry.
	s.mu.Lock()
	s.payHang = 0
	s.mu.Unlock()
	if st, m, _ := get("o7"); st != http.StatusOK || string(m["degraded"]) != "[]" {
		t.Fatalf("payments back: %d %v", st, m)
	}
	s.standins["payments"]()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, m, _ = get("o7")
		if st == http.StatusOK && string(m["degraded"]) == `["payment"]` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payments stopped: %d %v", st, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *system) breaker(t *testing.T, name string) client.BreakerStatus {
	st, _, body := s.call("127.0.0.1", http.MethodGet, "/debug/breakers", "", nil)
	var list []client.BreakerStatus
	if st != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("/debug/breakers: %d %s", st, body)
	}
	for _, b := range list {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no %s breaker in %s", name, body)
	return client.BreakerStatus{}
}

func (s *system) testBreaker(t *testing.T) {
	if st, _, _ := s.call("127.0.0.1", http.MethodGet, "/api/v1/products", "", nil); st != http.StatusOK {
		t.Fatalf("products before the crash: %d", st)
	}
	// A crash: the registration outlives the process until its lease expires.
	s.inventory.Stop(syscall.SIGKILL)
	for i := 0; i < 20 && s.breaker(t, "inventory").State != "open"; i++ {
		if st, _, body := s.call("127.0.0.1", http.MethodGet, "/api/v1/products", "", nil); st != http.StatusServiceUnavailable {
			t.Fatalf("products with inventory dead: %d %s", st, body)
		}
	}
	b := s.breaker(t, "inventory")
	if b.State != "open" || b.OpenUntil == nil {
		t.Fatalf("breaker after the crash: %+v", b)
	}
	start := time.Now()
	st, _, body := s.call("127.0.0.1", http.MethodGet, "/api/v1/products", "", nil)
	if st != http.StatusServiceUnavailable || !strings.Contains(string(body), "upstream_unavailable") {
		t.Fatalf("open breaker: %d %s", st, body)
	}
	// Fast means not waiting for the 3s upstream timeout.
	if took := time.Since(start); took > time.Second {
		t.Fatalf("503 took %v", took)
	}

	s.inventory = s.start("inventory", "DATABASE_URL="+s.invDSN)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _, _ := s.call("127.0.0.1", http.MethodGet, "/api/v1/products", "", nil)
		if st == http.StatusOK && s.breaker(t, "inventory").State == "closed" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("inventory back but breaker %+v, last status %d", s.breaker(t, "inventory"), st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
