package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

const declinedCard = "4000000000000002"
const goodCard = "4242424242424242"

// api calls the public API through the gateway and decodes the answer
// into out (when non-nil); it returns the status.
func api(t testing.TB, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(gwPort)+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

type product struct {
	ID         string `json:"id"`
	SKU        string `json:"sku"`
	PriceCents int    `json:"price_cents"`
	Stock      int    `json:"stock"`
}

type order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// user signs up a fresh user and returns its token.
func user(t testing.TB) string {
	t.Helper()
	email := fmt.Sprintf("e2e-%d@example.com", time.Now().UnixNano())
	if st := api(t, "POST", "/api/v1/auth/signup", "", map[string]string{"email": email, "password": "correct-horse-9", "name": "E2E"}, nil); st != http.StatusCreated {
		t.Fatalf("signup: %d", st)
	}
	var login struct {
		Token string `json:"token"`
	}
	if st := api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": "correct-horse-9"}, &login); st != http.StatusOK || login.Token == "" {
		t.Fatalf("login: %d", st)
	}
	return login.Token
}

func products(t testing.TB) []product {
	t.Helper()
	var ps []product
	if st := api(t, "GET", "/api/v1/products", "", nil, &ps); st != http.StatusOK || len(ps) == 0 {
		t.Fatalf("products: %d, %d products", st, len(ps))
	}
	return ps
}

func inStock(t testing.TB) product {
	t.Helper()
	for _, p := range products(t) {
		if p.Stock >= 50 {
			return p
		}
	}
	t.Fatal("no product with stock")
	return product{}
}

func stockOf(t testing.TB, id string) int {
	t.Helper()
	for _, p := range products(t) {
		if p.ID == id {
			return p.Stock
		}
	}
	t.Fatalf("product %s gone", id)
	return 0
}

func placeOrder(t testing.TB, token, productID, card string) string {
	t.Helper()
	var o order
	body := map[string]any{"items": []map[string]any{{"product_id": productID, "quantity": 1}}, "card_number": card}
	if st := api(t, "POST", "/api/v1/orders", token, body, &o); st != http.StatusAccepted || o.ID == "" {
		t.Fatalf("place order: %d %+v", st, o)
	}
	return o.ID
}

// final waits for an order to leave PENDING and returns it.
func final(t testing.TB, token, id string, within time.Duration) order {
	t.Helper()
	var o order
	eventually(t, within, "order "+id+" final", func() bool {
		o = order{}
		st := api(t, "GET", "/api/v1/orders/"+id, token, nil, &o)
		return st == http.StatusOK && (o.Status == "CONFIRMED" || o.Status == "CANCELLED")
	})
	return o
}

func TestUpAndPublicAPI(t *testing.T) {
	ensureUp(t)
	comps := ps(t)
	if len(comps) != 9 {
		t.Errorf("ps shows %d components, want 6 services and 3 infra", len(comps))
	}
	for _, c := range comps {
		if c.State != state.StateHealthy {
			t.Errorf("%s is %s (%s)", c.Name, c.State, c.Health)
		}
	}

	token := user(t)
	p := inStock(t)
	okID := placeOrder(t, token, p.ID, goodCard)
	if o := final(t, token, okID, 30*time.Second); o.Status != "CONFIRMED" {
		t.Errorf("order with a good card: %+v, want CONFIRMED", o)
	}

	before := stockOf(t, p.ID)
	badID := placeOrder(t, token, p.ID, declinedCard)
	if o := final(t, token, badID, 30*time.Second); o.Status != "CANCELLED" || o.Reason == "" {
		t.Errorf("order with a declined card: %+v, want CANCELLED with a reason", o)
	}
	eventually(t, 10*time.Second, "stock restored", func() bool { return stockOf(t, p.ID) == before })

	var sum struct {
		Order    order    `json:"order"`
		Degraded []string `json:"degraded"`
	}
	if st := api(t, "GET", "/api/v1/orders/"+okID+"/summary", token, nil, &sum); st != http.StatusOK || sum.Order.ID != okID {
		t.Errorf("summary: %d %+v", st, sum)
	}
	eventually(t, 15*time.Second, "notifications", func() bool {
		var ns []map[string]any
		return api(t, "GET", "/api/v1/notifications", token, nil, &ns) == http.StatusOK && len(ns) >= 2
	})

	t.Run("TracesAndBreakersThroughAgent", func(t *testing.T) {
		c := client(t)
		var snap state.Snapshot
		eventually(t, 20*time.Second, "a trace spanning gateway and orders", func() bool {
			var err error
			snap, err = c.Snapshot(t.Context())
			if err != nil {
				return false
			}
			for _, tr := range snap.Traces {
				if len(tr.Services) >= 2 && contains(tr.Services, "orders") {
					spans, err := c.Trace(t.Context(), tr.TraceID)
					return err == nil && len(spans) == tr.Spans
				}
			}
			return false
		})
		eventually(t, 10*time.Second, "breakers of the gateway", func() bool {
			snap, _ = c.Snapshot(t.Context())
			for _, b := range snap.Breakers {
				if b.Service == "gateway" && b.State != "" {
					return true
				}
			}
			return false
		})
		if len(snap.Registry["orders"]) == 0 {
			t.Errorf("registry in the snapshot has no orders: %+v", snap.Registry)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestRestartWithOrdersInFlight(t *testing.T) {
	ensureUp(t)
	token := user(t)
	p := inStock(t)
	const n = 10
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = placeOrder(t, token, p.ID, goodCard)
		}()
	}
	wg.Wait()
	mustMsctl(t, "restart", "orders")
	for _, id := range ids {
		if o := final(t, token, id, 60*time.Second); o.Status != "CONFIRMED" {
			t.Errorf("order %s: %+v, want CONFIRMED", id, o)
		}
	}
	if c := component(ps(t), "orders"); c.State != state.StateHealthy {
		t.Errorf("orders after restart: %+v", c)
	}
}
