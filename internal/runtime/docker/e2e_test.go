package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	agentapi "github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// client talks to the shop through the gateway, as a user would.
type client struct{ *testenv.API }

// gateway is the shop's public API for t; a request that takes over 15 s
// fails rather than holding the test.
func gateway(t *testing.T, shop testenv.Shop) *client {
	c := &client{shop.Gateway(t)}
	c.Client = &http.Client{Timeout: 15 * time.Second}
	return c
}

func (c *client) do(method, path, token string, body, out any) int {
	c.T.Helper()
	r := c.Call(method, path, token, nil, body)
	if r.Status >= 300 {
		c.T.Logf("%s %s: %d %s", method, path, r.Status, r.Body)
	}
	return r.Decode(c.T, out)
}

func (c *client) login(email string) string {
	c.T.Helper()
	return c.SignIn(email, "E2E", http.StatusCreated, http.StatusConflict, http.StatusOK)
}

func (c *client) settle(token, id string) testenv.Order {
	c.T.Helper()
	return c.Settle(token, id, 30*time.Second)
}

func (c *client) stock() int {
	c.T.Helper()
	for _, p := range c.Products() {
		if p.ID == testenv.Keyboard {
			return p.Stock
		}
	}
	c.T.Fatalf("product %s not listed", testenv.Keyboard)
	return 0
}

// TestShopEndToEnd brings the repository's whole shop up in containers and
// walks it: everything healthy and published on loopback only, the order
// saga both ways through the gateway, the summary and notifications; then
// Ctrl-C leaves nothing, the next up still has the order, and down with
// volumes removes the data.
func TestShopEndToEnd(t *testing.T) {
	shop, project := dockerShop(t)
	path := filepath.Join(shop.Dir, manifest.FileName)
	c := gateway(t, shop)

	up := agent(t, path)
	comps := ps(t, project)
	if len(comps) != 9 {
		t.Errorf("components = %v, want 3 infra and 6 services", comps)
	}
	for name, comp := range comps {
		if comp.State != state.StateHealthy || comp.Instances != 1 {
			t.Errorf("%s: %s, %d instances (%s)", name, comp.State, comp.Instances, comp.Health)
		}
	}
	assertLoopbackOnly(t, project)

	token := c.login("e2e@example.com")
	before := c.stock()
	confirmed := c.PlaceOrder(token, testenv.Keyboard, testenv.GoodCard, 1, nil)
	if o := c.settle(token, confirmed); o.Status != "CONFIRMED" {
		t.Fatalf("order with a good card: %+v", o)
	}
	declined := c.PlaceOrder(token, testenv.Keyboard, testenv.DeclinedCard, 1, nil)
	if o := c.settle(token, declined); o.Status != "CANCELLED" {
		t.Fatalf("order with a declined card: %+v", o)
	}
	testenv.Eventually(t, 20*time.Second, "stock back after the cancellation", func() error {
		if got := c.stock(); got != before-1 {
			return fmt.Errorf("stock %d, want %d", got, before-1)
		}
		return nil
	})
	testenv.Eventually(t, 20*time.Second, "summary with payment, user and notifications", func() error {
		var sum struct {
			Order         testenv.Order     `json:"order"`
			Payment       map[string]any    `json:"payment"`
			User          map[string]any    `json:"user"`
			Notifications []json.RawMessage `json:"notifications"`
			Degraded      []string          `json:"degraded"`
		}
		if code := c.do("GET", "/api/v1/orders/"+confirmed+"/summary", token, nil, &sum); code != http.StatusOK {
			return fmt.Errorf("summary: %d", code)
		}
		if sum.Order.Status != "CONFIRMED" || sum.Payment == nil || sum.User == nil || len(sum.Notifications) == 0 || len(sum.Degraded) > 0 {
			return fmt.Errorf("summary = %+v", sum)
		}
		return nil
	})
	testenv.Eventually(t, 20*time.Second, "a cancellation notice", func() error {
		var ns []struct{ Kind string }
		if code := c.do("GET", "/api/v1/notifications?order_id="+declined, token, nil, &ns); code != http.StatusOK || len(ns) != 1 || ns[0].Kind != "order_cancelled" {
			return fmt.Errorf("notifications: %d %+v", code, ns)
		}
		return nil
	})

	// Ctrl-C of a foreground up stops and removes everything but the data.
	if err := up.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_ = up.Wait()
	if left := leftovers(t, project); len(left) > 0 {
		t.Fatalf("after Ctrl-C: %v still there", left)
	}

	kill(t, agent(t, path))
	token = c.login("e2e@example.com")
	if o := c.settle(token, confirmed); o.Status != "CONFIRMED" {
		t.Errorf("after down and up, the order reads %+v", o)
	}

	// down --volumes without an agent, as after one was killed.
	m, err := manifest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.StopInfra(ctx, 10*time.Second); err != nil {
		t.Error(err)
	}
	if err := rt.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, project); len(left) > 0 {
		t.Errorf("after down --volumes: %v still there", left)
	}
	if v := volumesOf(t, project); len(v) > 0 {
		t.Errorf("after down --volumes: volumes %v still there", v)
	}
}

// dumpLogs shows the last output of every container of the workspace.
func dumpLogs(t *testing.T, project string) {
	err := docker.Logs(context.Background(), project, docker.LogsOptions{Tail: 40}, func(l state.LogLine) {
		t.Logf("%s %s: %s", l.Service, l.Stream, l.Text)
	})
	if err != nil {
		t.Logf("logs: %v", err)
	}
}

// TestChaosOnDocker runs the shop in containers with the msctl binary and
// puts latency on gateway->orders: the containers dial each other through
// the chaos proxy's container, so reading an order through the gateway
// takes at least the latency, and no longer once the fault is removed.
// Faults live in that container: with the agent killed, one still slows
// the reads and one added --for expires on time, and the next agent, which
// adopts every container, lists what is left.
func TestChaosOnDocker(t *testing.T) {
	shop, project := upDockerShop(t)
	c := gateway(t, shop)
	token := c.login("chaos@example.com")
	id := c.PlaceOrder(token, testenv.Keyboard, testenv.GoodCard, 1, nil)
	c.settle(token, id)

	shop.CheckLatencyOnGatewayToOrders(t, c.API, token, id, 600*time.Millisecond)
	read := func() time.Duration { return c.OrderReadTime(t, token, id) }

	kept := shop.AddFault(t, "payments->nats", "--latency", "50ms")
	expiring := shop.AddFault(t, "gateway->orders", "--latency", "600ms", "--for", "8s")
	before := ps(t, project)
	ac, err := agentapi.Connect(shop.Dir)
	if err != nil {
		t.Fatal(err)
	}
	pid := ac.Info().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Until(t, 10*time.Second, "the killed agent's lock released", func() bool { return !agentapi.Alive(agentapi.StateDir(shop.Dir)) })
	if took := read(); took < 600*time.Millisecond && time.Now().Before(expiring.ExpiresAt.Add(-time.Second)) {
		t.Errorf("with the agent killed and 600ms latency on gateway->orders, reading an order took %s", took)
	}
	time.Sleep(time.Until(*expiring.ExpiresAt) + 500*time.Millisecond)
	if took := read(); took >= 500*time.Millisecond {
		t.Errorf("after the fault expired (no agent running), reading an order took %s", took)
	}

	shop.Must(t, "up", "-d", "--runtime", "docker")
	for name, comp := range ps(t, project) {
		if comp.Container != before[name].Container {
			t.Errorf("%s was recreated by the next agent (container %s, was %s)", name, comp.Container, before[name].Container)
		}
	}
	var fs []state.Fault
	if err := json.Unmarshal([]byte(shop.Must(t, "chaos", "ls", "--json").Stdout), &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != kept.ID || fs[0].Edge() != "payments->nats" {
		t.Errorf("the next agent lists faults %+v, want only %s (payments->nats)", fs, kept.ID)
	}
}
