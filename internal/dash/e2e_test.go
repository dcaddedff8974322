package dash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// TestDashEndToEnd drives the real msctl binary in tmux against a running
// local workspace: the dashboard must show what the system really does.
// Under CI a missing tmux is a failure.
func TestDashEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is required under CI: apt-get install tmux")
		}
		t.Skip("tmux not installed")
	}
	bin := testenv.Msctl(t)

	ws := newWorkspace(t)
	e := &e2e{t: t, bin: bin, ws: ws.dir, gateway: fmt.Sprintf("http://127.0.0.1:%d", ws.port)}
	e.msctl(5*time.Minute, "up", "-d", "--runtime", "local")
	t.Cleanup(func() { e.msctlNoFail(2*time.Minute, "down", "--volumes") })
	e.startDash()

	t.Run("services healthy", func(t *testing.T) {
		e.keys("1")
		e.waitScreen("all six services healthy", time.Minute, func(s string) bool {
			for _, svc := range []string{"users", "inventory", "payments", "orders", "notifications", "gateway"} {
				if !regexp.MustCompile(`(?m)^[ ▶] ` + svc + `\s+service\s+healthy\s`).MatchString(s) {
					return false
				}
			}
			return true
		})
	})

	var orderID string
	t.Run("order trace and waterfall", func(t *testing.T) {
		token := e.user()
		orderID = e.placeOrder(token)
		e.keys("3", "/")
		e.typeText("payments")
		e.keys("Enter")
		e.waitScreen("the order's trace in the list", time.Minute, func(s string) bool {
			return strings.Contains(s, "orders") && strings.Contains(s, "payments") && strings.Contains(s, "gateway")
		})
		// The saga's later spans arrive after the first: reopen until all are there.
		deadline := time.Now().Add(time.Minute)
		for {
			e.keys("g", "Enter")
			ok := e.tryScreen(5*time.Second, func(s string) bool {
				return strings.Contains(s, "trace ") && strings.Contains(s, "gateway: ") && strings.Contains(s, "orders: ") &&
					strings.Contains(s, "inventory: ") && strings.Contains(s, "payments: ")
			})
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the waterfall never showed gateway, orders, inventory and payments spans:\n%s", e.screen())
			}
			e.keys("Escape")
			time.Sleep(time.Second)
		}
		e.keys("Escape", "Escape") // close the waterfall, clear the filter
	})

	t.Run("gateway breaker opens and closes", func(t *testing.T) {
		if orderID == "" {
			t.Skip("needs the order placed above")
		}
		token := e.login()
		pid := e.pid("payments")
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("stop payments: %v", err)
		}
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		defer resume()
		e.keys("4")
		open := regexp.MustCompile(`gateway\s+payments\s+open\b`)
		e.waitWhileRequesting("gateway→payments open", 90*time.Second, token, orderID, open.MatchString)
		resume()
		closed := regexp.MustCompile(`gateway\s+payments\s+closed\b`)
		e.waitWhileRequesting("gateway→payments closed again", 2*time.Minute, token, orderID, closed.MatchString)
	})

	t.Run("r restarts a service", func(t *testing.T) {
		before := e.pid("orders")
		e.keys("1", "/")
		e.typeText("orders")
		e.keys("Enter", "g", "r")
		e.waitScreen("orders restarted", 90*time.Second, func(s string) bool { return strings.Contains(s, "orders restarted") })
		if after := e.pid("orders"); after == before {
			t.Errorf("orders still runs as pid %d after the restart", before)
		}
	})
}

type e2e struct {
	t       *testing.T
	bin     string
	ws      string
	gateway string
	socket  string
	email   string
}

type workspace struct {
	dir  string
	port int
}

// newWorkspace is a copy of the repository's workspace on a free gateway
// port. Not t.TempDir: as root, Postgres runs as user postgres, which must
// be able to reach .msctl/ below, and t.TempDir's parent is private.
func newWorkspace(t *testing.T) workspace {
	t.Helper()
	dir, err := os.MkdirTemp("", "msctl-dash-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	if _, err := testenv.ShopManifest(dir, "", port); err != nil {
		t.Fatal(err)
	}
	return workspace{dir: dir, port: port}
}

func (e *e2e) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Dir = e.ws
	return cmd
}

func (e *e2e) msctl(timeout time.Duration, args ...string) []byte {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := e.command(ctx, args...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("msctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *e2e) msctlNoFail(timeout time.Duration, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if out, err := e.command(ctx, args...).CombinedOutput(); err != nil {
		e.t.Logf("msctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startDash runs `msctl dash` in a detached tmux session of its own server,
// so nothing else using tmux on the machine is touched.
func (e *e2e) startDash() {
	e.t.Helper()
	e.socket = fmt.Sprintf("msctl-dash-e2e-%d", os.Getpid())
	cmd := exec.Command("tmux", "-L", e.socket, "new-session", "-d", "-s", "dash", "-x", "160", "-y", "48", "-c", e.ws, e.bin+" dash")
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	e.t.Cleanup(func() { _ = exec.Command("tmux", "-L", e.socket, "kill-server").Run() })
}

func (e *e2e) keys(keys ...string) {
	e.t.Helper()
	for _, k := range keys {
		if out, err := exec.Command("tmux", "-L", e.socket, "send-keys", "-t", "dash", k).CombinedOutput(); err != nil {
			e.t.Fatalf("tmux send-keys %s: %v\n%s", k, err, out)
		}
		time.Sleep(50 * time.Millisecond) // one key per frame, as a person types
	}
}

func (e *e2e) typeText(s string) {
	e.t.Helper()
	if out, err := exec.Command("tmux", "-L", e.socket, "send-keys", "-t", "dash", "-l", s).CombinedOutput(); err != nil {
		e.t.Fatalf("tmux send-keys -l: %v\n%s", err, out)
	}
}

func (e *e2e) screen() string {
	out, err := exec.Command("tmux", "-L", e.socket, "capture-pane", "-p", "-t", "dash").Output()
	if err != nil {
		return fmt.Sprintf("(capture-pane: %v)", err)
	}
	return string(out)
}

func (e *e2e) tryScreen(timeout time.Duration, ok func(string) bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok(e.screen()) {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

func (e *e2e) waitScreen(what string, timeout time.Duration, ok func(string) bool) {
	e.t.Helper()
	if !e.tryScreen(timeout, ok) {
		e.t.Fatalf("the dashboard did not show %s within %s:\n%s", what, timeout, e.screen())
	}
}

// waitWhileRequesting keeps asking the gateway for the order summary (which
// calls payments) until the screen satisfies ok.
// Each round sends a burst of concurrent summaries: a stopped service also
// stops renewing its registry lease, and once the lease lapses the gateway
// answers 503 without calling it, so the breaker's failures must all land
// within one lease, not one request at a time.
func (e *e2e) waitWhileRequesting(what string, timeout time.Duration, token, orderID string, ok func(string) bool) {
	e.t.Helper()
	const burst = 8
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, e.gateway+"/api/v1/orders/"+orderID+"/summary", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		if ok(e.screen()) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("the dashboard did not show %s within %s:\n%s", what, timeout, e.screen())
}

// pid is a service's host process id, from `msctl ps --json`.
func (e *e2e) pid(service string) int {
	e.t.Helper()
	out := e.msctl(30*time.Second, "ps", "--json")
	var comps []state.Component
	if err := json.Unmarshal(out, &comps); err != nil {
		var snap state.Snapshot
		if err2 := json.Unmarshal(out, &snap); err2 != nil {
			e.t.Fatalf("msctl ps --json is neither components nor a snapshot: %v\n%s", errors.Join(err, err2), out)
		}
		comps = snap.Components
	}
	for _, c := range comps {
		if c.Name == service && c.PID != 0 {
			return c.PID
		}
	}
	e.t.Fatalf("msctl ps --json has no pid for %s:\n%s", service, out)
	return 0
}

func (e *e2e) call(method, path, token string, body any, want int, out any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.gateway+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b.String())
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			e.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// user signs up a fresh user and returns a token.
func (e *e2e) user() string {
	e.t.Helper()
	e.email = "dash-e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.com"
	e.call(http.MethodPost, "/api/v1/auth/signup", "", map[string]string{"email": e.email, "password": "correct horse battery", "name": "Dash"}, http.StatusCreated, nil)
	return e.login()
}

func (e *e2e) login() string {
	e.t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": e.email, "password": "correct horse battery"}, http.StatusOK, &tok)
	return tok.Token
}

func (e *e2e) placeOrder(token string) string {
	e.t.Helper()
	// Ids pass through as the gateway gave them, whatever their JSON type.
	var products []struct {
		ID    json.RawMessage `json:"id"`
		Stock int             `json:"stock"`
	}
	e.call(http.MethodGet, "/api/v1/products", "", nil, http.StatusOK, &products)
	var pick json.RawMessage
	for _, p := range products {
		if p.Stock > 0 {
			pick = p.ID
			break
		}
	}
	if pick == nil {
		e.t.Fatalf("no product in stock: %+v", products)
	}
	var order struct {
		ID json.RawMessage `json:"id"`
	}
	e.call(http.MethodPost, "/api/v1/orders", token, map[string]any{
		"items": []map[string]any{{"product_id": pick, "quantity": 1}}, "card_number": "4242424242424242",
	}, http.StatusAccepted, &order)
	var id string
	if err := json.Unmarshal(order.ID, &id); err != nil {
		id = string(order.ID) // a number
	}
	return id
}
