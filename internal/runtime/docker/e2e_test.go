package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// Seeded by services/inventory/migrations.
const keyboard = "bf16a7f8-dad1-48c7-9049-62fbe5440f29" // 8900 cents

const (
	goodCard     = "4242424242424242"
	declinedCard = "4000000000000002"
)

// client talks to the shop through the gateway, as a user would.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func (c *client) do(method, path, token string, body, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	if resp.StatusCode >= 300 {
		c.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

func (c *client) login(email string) string {
	c.t.Helper()
	creds := map[string]string{"email": email, "password": "correct horse battery", "name": "E2E"}
	if code := c.do("POST", "/api/v1/auth/signup", "", creds, nil); code != http.StatusCreated && code != http.StatusConflict && code != http.StatusOK {
		c.t.Fatalf("signup: %d", code)
	}
	var tok struct{ Token string }
	login := map[string]string{"email": email, "password": creds["password"]}
	if code := c.do("POST", "/api/v1/auth/login", "", login, &tok); code != http.StatusOK || tok.Token == "" {
		c.t.Fatalf("login: %d", code)
	}
	return tok.Token
}

type order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

func (c *client) place(token, card string, qty int) string {
	c.t.Helper()
	var o order
	body := map[string]any{"items": []map[string]any{{"product_id": keyboard, "quantity": qty}}, "card_number": card}
	if code := c.do("POST", "/api/v1/orders", token, body, &o); code != http.StatusAccepted || o.ID == "" {
		c.t.Fatalf("place order: %d %+v", code, o)
	}
	return o.ID
}

func (c *client) settle(token, id string) order {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var o order
		code := c.do("GET", "/api/v1/orders/"+id, token, nil, &o)
		if code == http.StatusOK && o.Status != "PENDING" {
			return o
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("order %s: %d %+v after 30s", id, code, o)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *client) stock() int {
	c.t.Helper()
	var ps []struct {
		ID    string `json:"id"`
		Stock int    `json:"stock"`
	}
	if code := c.do("GET", "/api/v1/products", "", nil, &ps); code != http.StatusOK {
		c.t.Fatalf("list products: %d", code)
	}
	for _, p := range ps {
		if p.ID == keyboard {
			return p.Stock
		}
	}
	c.t.Fatalf("product %s not listed", keyboard)
	return 0
}

func (c *client) eventually(what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestShopEndToEnd brings the repository's whole shop up in containers and
// walks it: everything healthy and published on loopback only, the order
// saga both ways through the gateway, the summary and notifications; then
// Ctrl-C leaves nothing, the next up still has the order, and down with
// volumes removes the data.
func TestShopEndToEnd(t *testing.T) {
	testenv.RequireDocker(t)
	if testing.Short() {
		t.Skip("system test")
	}
	project := uniqueProject(t)
	port := testenv.FreePort(t)
	path, err := testenv.ShopManifest(t.TempDir(), project, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeWorkspace(t, project) })
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, project)
		}
	})
	c := &client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), http: &http.Client{Timeout: 15 * time.Second}}

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
	confirmed := c.place(token, goodCard, 1)
	if o := c.settle(token, confirmed); o.Status != "CONFIRMED" {
		t.Fatalf("order with a good card: %+v", o)
	}
	declined := c.place(token, declinedCard, 1)
	if o := c.settle(token, declined); o.Status != "CANCELLED" {
		t.Fatalf("order with a declined card: %+v", o)
	}
	c.eventually("stock back after the cancellation", func() error {
		if got := c.stock(); got != before-1 {
			return fmt.Errorf("stock %d, want %d", got, before-1)
		}
		return nil
	})
	c.eventually("summary with payment, user and notifications", func() error {
		var sum struct {
			Order         order             `json:"order"`
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
	c.eventually("a cancellation notice", func() error {
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
