package scaffold_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
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
		opts := v.Opts
		opts.ManifestPath, opts.Lang = filepath.Join(ws, manifest.FileName), "go"
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
	cli := testenv.CLI{Bin: filepath.Join(t.TempDir(), "msctl"), Dir: ws, Timeout: 10 * time.Minute}
	run(t, ws, "go", "build", "-o", cli.Bin, "./cmd/msctl")
	msctl := func(args ...string) string { t.Helper(); return cli.Must(t, args...).Stdout }

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

	cli.DownAtCleanup(t)
	msctl("up", "-d", "--runtime", "local")

	t.Run("HealthyWithOwnDatabase", func(t *testing.T) {
		comps := cli.PS(t)
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
		testenv.Until(t, 15*time.Second, "shipping in the registry", func() bool {
			snap, err := c.Snapshot(t.Context())
			return err == nil && len(snap.Registry["shipping"]) > 0
		})
	})

	gw := &testenv.API{T: t, Base: "http://127.0.0.1:" + strconv.Itoa(port)}
	token := gw.SignIn(fmt.Sprintf("scaffold-%d@example.com", time.Now().UnixNano()), "Scaffold")
	t.Run("RoutedAndTraced", func(t *testing.T) {
		gw.T = t
		if st := gw.Do("GET", "/api/v1/shipping/items", "", nil, nil); st != http.StatusUnauthorized {
			t.Errorf("without a token: status %d, want 401", st)
		}
		var item struct{ ID, Name string }
		if r := gw.Call("POST", "/api/v1/shipping/items", token, nil, map[string]string{"name": "parcel"}); r.Status != http.StatusCreated {
			t.Fatalf("create through the gateway: %d %s", r.Status, r.Body)
		} else if err := json.Unmarshal(r.Body, &item); err != nil || item.Name != "parcel" {
			t.Fatalf("created %s (%v)", r.Body, err)
		}
		r := gw.Call("GET", "/api/v1/shipping/items/"+item.ID, token, nil, nil)
		if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(item.ID)) {
			t.Fatalf("get through the gateway: %d %s", r.Status, r.Body)
		}
		testenv.Until(t, 20*time.Second, "one trace spanning gateway and shipping", func() bool {
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
		gw.T = t
		orderID := gw.PlaceOrder(token, gw.InStock(1).ID, testenv.GoodCard, 1, nil)
		testenv.Until(t, 30*time.Second, "OrderConfirmed of "+orderID+" received by shipping", func() bool {
			r := gw.Call("GET", "/api/v1/shipping/events", token, nil, nil)
			var evs []receivedEvent
			if r.Status != http.StatusOK || json.Unmarshal(r.Body, &evs) != nil {
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

// run runs a command in dir, bounded in time (see testenv.Exec), fails
// the test unless it succeeds and returns its stdout.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	return testenv.Exec(t, 10*time.Minute, dir, name, args...).Must(t).Stdout
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
