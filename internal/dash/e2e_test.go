package dash_test

import (
	"fmt"
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

	"github.com/msctl/msctl/internal/testenv"
)

// TestDashEndToEnd drives the real msctl binary in tmux against a running
// local workspace: the dashboard must show what the system really does.
// Under CI a missing tmux is a failure.
func TestDashEndToEnd(t *testing.T) {
	testenv.SkipShort(t, "end-to-end")
	testenv.RequireCommand(t, "tmux", "apt-get install tmux")
	shop := testenv.NewShop(t, testenv.Msctl(t), "")
	e := &e2e{t: t, shop: shop, gateway: shop.Gateway(t)}
	shop.Must(t, "up", "-d", "--runtime", "local")
	shop.DownAtCleanup(t)
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
		// Its root is the gateway's span, named after the route it matched, not "POST /".
		e.waitScreen("the order's trace in the list", time.Minute, func(s string) bool {
			return strings.Contains(s, "gateway: POST /api/v1/orders ") && strings.Contains(s, "payments")
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

	// The one order placed above published orders.evt.created once; its
	// consumers' deliveries pass the agent's `>` subscription too and are
	// counted per consumer, not as more publishes.
	t.Run("events counted once", func(t *testing.T) {
		if orderID == "" {
			t.Skip("needs the order placed above")
		}
		e.keys("6")
		once := regexp.MustCompile(`(?m)^[ ▶] orders\.evt\.created\s+\S+\s+1\s`)
		e.waitScreen("orders.evt.created counted once, deliveries per consumer", time.Minute, func(s string) bool {
			return once.MatchString(s) && regexp.MustCompile(`\s[1-9]\d* delivered\s`).MatchString(s)
		})
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

	t.Run("x takes the breaker's edge down, X clears it", func(t *testing.T) {
		if orderID == "" {
			t.Skip("needs the order placed above")
		}
		token := e.login()
		e.keys("4", "/")
		e.typeText("payments")
		e.keys("Enter", "g", "x")
		fault := regexp.MustCompile(`gateway->payments\s+down`)
		open := regexp.MustCompile(`gateway\s+payments\s+open\b`)
		e.waitWhileRequesting("the fault listed and gateway→payments open", 90*time.Second, token, orderID, func(s string) bool {
			return fault.MatchString(s) && open.MatchString(s)
		})
		e.keys("X")
		closed := regexp.MustCompile(`gateway\s+payments\s+closed\b`)
		e.waitWhileRequesting("no fault and gateway→payments closed again", 2*time.Minute, token, orderID, func(s string) bool {
			return !strings.Contains(s, "ACTIVE FAULTS") && closed.MatchString(s)
		})
		e.keys("Escape") // drop the filter
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
	shop    testenv.Shop
	gateway *testenv.API
	socket  string
	email   string
}

// startDash runs `msctl dash` in a detached tmux session of its own server,
// so nothing else using tmux on the machine is touched.
func (e *e2e) startDash() {
	e.t.Helper()
	e.socket = fmt.Sprintf("msctl-dash-e2e-%d", os.Getpid())
	cmd := exec.Command("tmux", "-L", e.socket, "new-session", "-d", "-s", "dash", "-x", "160", "-y", "48", "-c", e.shop.Dir, e.shop.Bin+" dash")
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
				req, _ := http.NewRequest(http.MethodGet, e.gateway.Base+"/api/v1/orders/"+orderID+"/summary", nil)
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
	comps := e.shop.PS(e.t)
	for _, c := range comps {
		if c.Name == service && c.PID != 0 {
			return c.PID
		}
	}
	e.t.Fatalf("msctl ps --json has no pid for %s: %+v", service, comps)
	return 0
}

// user signs up a fresh user and returns a token.
func (e *e2e) user() string {
	e.t.Helper()
	e.email = "dash-e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.com"
	return e.gateway.SignIn(e.email, "Dash")
}

func (e *e2e) login() string {
	e.t.Helper()
	token, code := e.gateway.Login(e.email)
	if code != http.StatusOK {
		e.t.Fatalf("login: %d", code)
	}
	return token
}

func (e *e2e) placeOrder(token string) string {
	e.t.Helper()
	return e.gateway.PlaceOrder(token, e.gateway.InStock(1).ID, testenv.GoodCard, 1, nil)
}
