package scaffold_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/scaffold"
)

// The tests of this file work in one copy of the repository, made by the
// first of them and reset to its first commit for each: building the whole
// workspace is most of their cost, and the build cache only serves builds
// from the same directory.
var repo struct {
	mu sync.Mutex
	// dir is the copy (removed by TestMain) and base its first commit.
	dir  string
	base string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if repo.dir != "" {
		os.RemoveAll(repo.dir)
	}
	os.Exit(code)
}

// sharedRepo returns the repository copy as it was first committed.
func sharedRepo(t *testing.T) string {
	t.Helper()
	repo.mu.Lock()
	defer repo.mu.Unlock()
	if repo.base != "" {
		git(t, repo.dir, "reset", "-q", "--hard", repo.base)
		git(t, repo.dir, "clean", "-fdq")
		return repo.dir
	}
	if repo.dir != "" {
		t.Fatal("copying the repository failed in an earlier test")
	}
	copyRepo(t)
	git(t, repo.dir, "init", "-q")
	git(t, repo.dir, "add", "-A")
	git(t, repo.dir, "commit", "-q", "-m", "copy")
	repo.base = strings.TrimSpace(git(t, repo.dir, "rev-parse", "HEAD"))
	return repo.dir
}

// requireWorkspace skips a test that builds and runs the whole workspace
// with -short or without Postgres, except in CI, where it must run.
func requireWorkspace(t *testing.T) {
	t.Helper()
	ci := os.Getenv("CI") != ""
	if testing.Short() && !ci {
		t.Skip("builds the whole workspace; skipped with -short")
	}
	if _, err := pgserver.FindBin(); err != nil {
		if ci {
			t.Fatalf("postgres unavailable: %v", err)
		}
		t.Skipf("postgres unavailable: %v", err)
	}
}

// TestGeneratedVariants scaffolds every golden variant of the Go template
// into the repository copy at once (between them: memory and Postgres
// adapters, internal-only, routed with and without a token, publishing,
// consuming from two streams, a dependency and a fixed port) and builds,
// vets and tests them with no edit. The goldens show what is rendered; this
// shows that each variant compiles and its generated tests pass. One go
// command of each kind covers all variants.
func TestGeneratedVariants(t *testing.T) {
	requireWorkspace(t)
	ws := sharedRepo(t)
	var pkgs []string
	for _, v := range scaffold.GoldenVariants() {
		m, err := manifest.Load(filepath.Join(ws, manifest.FileName))
		if err != nil {
			t.Fatal(err)
		}
		opts := v.Opts
		opts.Manifest, opts.Lang = m, "go"
		p, err := scaffold.New(opts)
		if err != nil {
			t.Fatalf("variant %s: %v", v.Golden, err)
		}
		if err := p.Apply(); err != nil {
			t.Fatalf("variant %s: %v", v.Golden, err)
		}
		pkgs = append(pkgs, "./"+p.Dir+"/...")
	}
	if _, err := manifest.Load(filepath.Join(ws, manifest.FileName)); err != nil {
		t.Fatalf("manifest with every variant: %v", err)
	}
	run(t, ws, "go", "build", "./...")
	// The contract stubs are test files: vet type-checks them.
	run(t, ws, "go", append([]string{"vet", "./contracts/..."}, pkgs...)...)
	// Vetted just above: go test need not vet again.
	run(t, ws, "go", append([]string{"test", "-count=1", "-vet=off"}, pkgs...)...)
}

// TestNewServiceEndToEnd is the acceptance of `msctl new service`: in a copy
// of the repository, a service scaffolded with a database, a route and a
// subscription builds, vets and passes its tests with no edit, runs on the
// local runtime with its own database and role, registers, is routed and
// traced through the gateway, receives OrderConfirmed, and its contract
// stub passes `msctl contracts verify`.
func TestNewServiceEndToEnd(t *testing.T) {
	requireWorkspace(t)
	ws := sharedRepo(t)
	// Chosen now, just before msctl up, so that it is most likely still
	// free; committed so that git status shows only what msctl new did.
	port := testenv.FreePort(t)
	setGatewayPort(t, ws, port)
	git(t, ws, "commit", "-q", "-a", "-m", "gateway port")
	bin := filepath.Join(t.TempDir(), "msctl")
	run(t, ws, "go", "build", "-o", bin, "./cmd/msctl")
	msctl := func(args ...string) string { t.Helper(); return run(t, ws, bin, args...) }

	out := msctl("new", "service", "shipping", "--db", "--route", "/api/v1/shipping", "--consumes", "OrderConfirmed")
	if !strings.Contains(out, "created services/shipping/main.go") {
		t.Fatalf("msctl new printed:\n%s", out)
	}
	status := strings.Split(strings.TrimRight(git(t, ws, "status", "--porcelain", "--untracked-files=all"), "\n"), "\n")
	for _, want := range []string{" M msctl.yaml", "?? contracts/consumer_gateway_shipping_test.go", "?? contracts/provider_shipping_test.go", "?? services/shipping/main.go"} {
		if !slices.Contains(status, want) {
			t.Errorf("git status lacks %q:\n%s", want, strings.Join(status, "\n"))
		}
	}
	for _, line := range status {
		if line != " M msctl.yaml" && !strings.HasPrefix(line, "?? contracts/") && !strings.HasPrefix(line, "?? services/shipping/") {
			t.Errorf("unexpected change: %q", line)
		}
	}

	run(t, ws, "go", "build", "./...")
	run(t, ws, "go", "vet", "./...")
	run(t, ws, "go", "test", "-count=1", "./services/shipping/...")

	t.Cleanup(func() {
		cmd := exec.Command(bin, "down", "--volumes")
		cmd.Dir = ws
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("msctl down: %v\n%s", err, out)
		}
	})
	msctl("up", "-d", "--runtime", "local")

	t.Run("HealthyWithOwnDatabase", func(t *testing.T) {
		var comps []state.Component
		if err := json.Unmarshal([]byte(msctl("ps", "--json")), &comps); err != nil {
			t.Fatal(err)
		}
		var pgAddr string
		for _, c := range comps {
			if c.Name == "shipping" && c.State != state.StateHealthy {
				t.Errorf("shipping is %s (%s)", c.State, c.Health)
			}
			if c.Name == "postgres" {
				pgAddr = c.Endpoint
			}
		}
		if !slices.ContainsFunc(comps, func(c state.Component) bool { return c.Name == "shipping" }) {
			t.Fatalf("ps does not list shipping: %+v", comps)
		}
		// The runtime created role shipping with its own password: it opens
		// database shipping and no other service's.
		dsn := func(db string) string {
			return fmt.Sprintf("postgres://shipping:%s@%s/%s?sslmode=disable", secret(t, ws, "shipping"), hostPort(pgAddr), db)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn("shipping"))
		if err != nil {
			t.Fatalf("connect as shipping to its database: %v", err)
		}
		var items int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&items); err != nil {
			t.Errorf("migrations did not create items: %v", err)
		}
		conn.Close(ctx)
		if conn, err := pgx.Connect(ctx, dsn("orders")); err == nil {
			conn.Close(ctx)
			t.Errorf("role shipping can connect to the orders database")
		}
	})

	c, err := agent.Connect(ws)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Registered", func(t *testing.T) {
		eventually(t, 15*time.Second, "shipping in the registry", func() bool {
			snap, err := c.Snapshot(t.Context())
			return err == nil && len(snap.Registry["shipping"]) > 0
		})
	})

	gw := &gateway{t: t, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	token := gw.signIn()
	t.Run("RoutedAndTraced", func(t *testing.T) {
		gw.t = t
		if st, _ := gw.call("GET", "/api/v1/shipping/items", "", nil); st != http.StatusUnauthorized {
			t.Errorf("without a token: status %d, want 401", st)
		}
		var item struct{ ID, Name string }
		if st, body := gw.call("POST", "/api/v1/shipping/items", token, map[string]string{"name": "parcel"}); st != http.StatusCreated {
			t.Fatalf("create through the gateway: %d %s", st, body)
		} else if err := json.Unmarshal(body, &item); err != nil || item.Name != "parcel" {
			t.Fatalf("created %s (%v)", body, err)
		}
		st, body := gw.call("GET", "/api/v1/shipping/items/"+item.ID, token, nil)
		if st != http.StatusOK || !bytes.Contains(body, []byte(item.ID)) {
			t.Fatalf("get through the gateway: %d %s", st, body)
		}
		eventually(t, 20*time.Second, "one trace spanning gateway and shipping", func() bool {
			snap, err := c.Snapshot(t.Context())
			if err != nil {
				return false
			}
			for _, tr := range snap.Traces {
				if slices.Contains(tr.Services, "gateway") && slices.Contains(tr.Services, "shipping") {
					spans, err := c.Trace(t.Context(), tr.TraceID)
					return err == nil && slices.ContainsFunc(spans, func(s state.Span) bool { return s.Service == "shipping" })
				}
			}
			return false
		})
	})

	t.Run("ReceivesOrderConfirmed", func(t *testing.T) {
		gw.t = t
		orderID := gw.placeOrder(token)
		eventually(t, 30*time.Second, "OrderConfirmed of "+orderID+" received by shipping", func() bool {
			st, body := gw.call("GET", "/api/v1/shipping/events", token, nil)
			var evs []receivedEvent
			if st != http.StatusOK || json.Unmarshal(body, &evs) != nil {
				return false
			}
			return slices.ContainsFunc(evs, func(e receivedEvent) bool {
				return e.Subject == "orders.evt.confirmed" && e.Data.OrderID == orderID
			})
		})
	})

	t.Run("ContractsVerify", func(t *testing.T) {
		testenv.RequirePact(t)
		var rep struct {
			OK    bool
			Pairs []pactPair
		}
		out := msctl("contracts", "verify", "--json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("contracts verify --json: %v\n%s", err, out)
		}
		if !rep.OK {
			t.Errorf("contracts verify failed:\n%s", out)
		}
		if !slices.ContainsFunc(rep.Pairs, func(p pactPair) bool {
			return p.Consumer == "gateway" && p.Provider == "shipping" && p.Status == "passed" && p.Verified == 3
		}) {
			t.Errorf("no verified gateway -> shipping pact:\n%s", out)
		}
	})
}

// Shapes of the answers the test reads.
type (
	receivedEvent struct {
		Subject string
		Data    struct {
			OrderID string `json:"order_id"`
		}
	}
	pactPair struct {
		Consumer, Provider, Status string
		Verified                   int
	}
	product struct {
		ID    string
		Stock int
	}
)

// copyRepo copies the repository's working tree (tracked and untracked
// files, minus what .gitignore excludes) into repo.dir, a new temporary
// directory that Postgres, running as another user when we are root, can
// enter.
func copyRepo(t *testing.T) {
	t.Helper()
	_, file, _, _ := goruntime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	// Not t.TempDir: its parent is private to us, and it would not outlive
	// the test.
	dst, err := os.MkdirTemp("", "msctl-scaffold-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	repo.dir = dst
	if err := os.Chmod(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	list := git(t, root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, rel := range strings.Split(strings.TrimRight(list, "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or not a plain file
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// setGatewayPort points the copy's gateway at a free port, never 8080.
func setGatewayPort(t *testing.T, ws string, port int) {
	t.Helper()
	p := filepath.Join(ws, "msctl.yaml")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(gateway:\n(?:[ \t]*#.*\n)*[ \t]+port:[ \t]*)\d+`)
	if !re.Match(data) {
		t.Fatalf("no gateway.port in %s", p)
	}
	data = re.ReplaceAll(data, []byte("${1}"+strconv.Itoa(port)))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return run(t, dir, "git", append([]string{"-c", "user.name=msctl", "-c", "user.email=msctl@example.com"}, args...)...)
}

// run runs a command in dir, bounded in time, and returns its stdout. The
// bound ends a minute before the test binary's -timeout: a step that is
// too slow then fails the test, whose cleanups (msctl down) still run,
// rather than the binary panicking and leaving the local runtime behind.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	end := time.Now().Add(10 * time.Minute)
	if d, ok := t.Deadline(); ok && d.Add(-time.Minute).Before(end) {
		end = d.Add(-time.Minute)
	}
	ctx, cancel := context.WithDeadline(t.Context(), end)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// secret reads the password the local runtime generated for service.
func secret(t *testing.T, ws, service string) string {
	t.Helper()
	var pw string
	err := filepath.WalkDir(filepath.Join(ws, ".msctl"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.Name() != "secrets.json" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var secrets map[string]string
		if err := json.Unmarshal(data, &secrets); err != nil {
			return err
		}
		pw = secrets[service]
		return fs.SkipAll
	})
	if err != nil || pw == "" {
		t.Fatalf("no password for %s under .msctl (%v)", service, err)
	}
	return pw
}

// hostPort takes host:port out of an endpoint that may be a URL.
func hostPort(endpoint string) string {
	if i := strings.Index(endpoint, "://"); i >= 0 {
		endpoint = endpoint[i+3:]
	}
	return strings.TrimSuffix(strings.SplitN(endpoint, "/", 2)[0], "/")
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gateway calls the workspace's public API.
type gateway struct {
	t    *testing.T
	base string
}

func (g *gateway) call(method, path, token string, body any) (int, []byte) {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (g *gateway) signIn() string {
	g.t.Helper()
	email := fmt.Sprintf("scaffold-%d@example.com", time.Now().UnixNano())
	if st, body := g.call("POST", "/api/v1/auth/signup", "", map[string]string{"email": email, "password": "correct-horse-9", "name": "Scaffold"}); st != http.StatusCreated {
		g.t.Fatalf("signup: %d %s", st, body)
	}
	var login struct{ Token string }
	st, body := g.call("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": "correct-horse-9"})
	if st != http.StatusOK || json.Unmarshal(body, &login) != nil || login.Token == "" {
		g.t.Fatalf("login: %d %s", st, body)
	}
	return login.Token
}

// placeOrder orders one unit of a product in stock with a card that is
// charged, and returns the order id.
func (g *gateway) placeOrder(token string) string {
	g.t.Helper()
	st, body := g.call("GET", "/api/v1/products", "", nil)
	var products []product
	if st != http.StatusOK || json.Unmarshal(body, &products) != nil {
		g.t.Fatalf("products: %d %s", st, body)
	}
	i := slices.IndexFunc(products, func(p product) bool { return p.Stock > 0 })
	if i < 0 {
		g.t.Fatalf("no product in stock: %s", body)
	}
	order := map[string]any{"items": []map[string]any{{"product_id": products[i].ID, "quantity": 1}}, "card_number": "4242424242424242"}
	st, body = g.call("POST", "/api/v1/orders", token, order)
	var o struct{ ID string }
	if st != http.StatusAccepted || json.Unmarshal(body, &o) != nil || o.ID == "" {
		g.t.Fatalf("place order: %d %s", st, body)
	}
	return o.ID
}
