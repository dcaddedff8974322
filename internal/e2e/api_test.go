package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/agent/agenttest"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// gateway is the public API of the workspace, for t.
func gateway(t testing.TB) *testenv.API { return shop.Gateway(t) }

// signup signs up a fresh user and returns its token and email.
func signup(t testing.TB) (token, email string) {
	t.Helper()
	email = fmt.Sprintf("e2e-%d@example.com", time.Now().UnixNano())
	return gateway(t).SignIn(email, "E2E"), email
}

func stockOf(t testing.TB, id string) int {
	t.Helper()
	for _, p := range gateway(t).Products() {
		if p.ID == id {
			return p.Stock
		}
	}
	t.Fatalf("product %s gone", id)
	return 0
}

func TestUpAndPublicAPI(t *testing.T) {
	ensureUp(t)
	comps := shop.PS(t)
	if len(comps) != 9 {
		t.Errorf("ps shows %d components, want 6 services and 3 infra", len(comps))
	}
	for _, c := range comps {
		if c.State != state.StateHealthy {
			t.Errorf("%s is %s (%s)", c.Name, c.State, c.Health)
		}
	}

	token, email := signup(t)
	p := gateway(t).InStock(50)
	metricsBefore := agenttest.Metrics(t, shop.Dir)
	// The client starts the trace, so the order's trace is known without
	// guessing which of the agent's traces it is.
	traceID := randomHex(t, 16)
	okID := gateway(t).PlaceOrder(token, p.ID, testenv.GoodCard, 1, http.Header{
		"Traceparent": {"00-" + traceID + "-" + randomHex(t, 8) + "-01"},
	})
	if o := gateway(t).Settle(token, okID, 30*time.Second); o.Status != "CONFIRMED" {
		t.Errorf("order with a good card: %+v, want CONFIRMED", o)
	}

	before := stockOf(t, p.ID)
	badID := gateway(t).PlaceOrder(token, p.ID, testenv.DeclinedCard, 1, nil)
	if o := gateway(t).Settle(token, badID, 30*time.Second); o.Status != "CANCELLED" || o.Reason == "" {
		t.Errorf("order with a declined card: %+v, want CANCELLED with a reason", o)
	}
	testenv.Until(t, 10*time.Second, "stock restored", func() bool { return stockOf(t, p.ID) == before })
	// Both orders are counted in the services' metrics the agent received.
	agenttest.MetricsReflectLoad(t, shop.Dir, metricsBefore, agenttest.OrderLoads(2)...)

	// Notifications are written after the order is confirmed: the summary
	// is complete once its notification is in.
	var sum struct {
		Order   testenv.Order `json:"order"`
		Payment struct {
			OrderID     string `json:"order_id"`
			Status      string `json:"status"`
			AmountCents int64  `json:"amount_cents"`
		} `json:"payment"`
		User struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"user"`
		Notifications []notification `json:"notifications"`
		Degraded      []string       `json:"degraded"`
	}
	testenv.Until(t, 15*time.Second, "summary with the notification", func() bool {
		sum.Notifications = nil
		return gateway(t).Do("GET", "/api/v1/orders/"+okID+"/summary", token, nil, &sum) == http.StatusOK && len(sum.Notifications) > 0
	})
	if sum.Order.ID != okID || sum.Order.Status != "CONFIRMED" {
		t.Errorf("summary order: %+v, want %s CONFIRMED", sum.Order, okID)
	}
	if sum.Payment.OrderID != okID || sum.Payment.Status != "CHARGED" || sum.Payment.AmountCents != int64(p.PriceCents) {
		t.Errorf("summary payment: %+v, want %s CHARGED %d", sum.Payment, okID, p.PriceCents)
	}
	if sum.User.ID == "" || sum.User.Email != email {
		t.Errorf("summary user: %+v, want %s", sum.User, email)
	}
	if len(sum.Notifications) != 1 || sum.Notifications[0].OrderID != okID || sum.Notifications[0].Kind != "order_confirmed" {
		t.Errorf("summary notifications: %+v, want one order_confirmed for %s", sum.Notifications, okID)
	}
	if sum.Degraded == nil || len(sum.Degraded) != 0 {
		t.Errorf("summary degraded: %#v, want []", sum.Degraded)
	}
	testenv.Until(t, 15*time.Second, "notifications", func() bool {
		var ns []notification
		return gateway(t).Do("GET", "/api/v1/notifications", token, nil, &ns) == http.StatusOK && len(ns) >= 2
	})

	t.Run("TracesAndBreakersThroughAgent", func(t *testing.T) {
		c := client(t)
		// One order is one trace: the gateway, orders and every consumer
		// of its events (through the outbox relay and NATS) add to it.
		want := []string{"gateway", "orders", "inventory", "payments", "notifications"}
		var spans []state.Span
		var seen []string
		deadline := time.Now().Add(20 * time.Second)
		for {
			var err error
			spans, err = c.Trace(t.Context(), traceID)
			seen = servicesOf(spans)
			if err == nil && containsAll(seen, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("trace %s of order %s: services %v (%d spans, err %v), want %v", traceID, okID, seen, len(spans), err, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, sp := range spans {
			if sp.TraceID != traceID {
				t.Errorf("span %s of %s in trace %s belongs to %s", sp.Name, sp.Service, traceID, sp.TraceID)
			}
		}
		var snap state.Snapshot
		testenv.Until(t, 10*time.Second, "the order's trace in the snapshot", func() bool {
			var err error
			snap, err = c.Snapshot(t.Context())
			if err != nil {
				return false
			}
			for _, tr := range snap.Traces {
				if tr.TraceID == traceID {
					return containsAll(tr.Services, want)
				}
			}
			return false
		})
		testenv.Until(t, 10*time.Second, "breakers of the gateway", func() bool {
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

type notification struct {
	OrderID string `json:"order_id"`
	Kind    string `json:"kind"`
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// servicesOf lists the services of spans, each once, in order of appearance.
func servicesOf(spans []state.Span) []string {
	var out []string
	for _, sp := range spans {
		if !contains(out, sp.Service) {
			out = append(out, sp.Service)
		}
	}
	return out
}

func containsAll(list, want []string) bool {
	for _, w := range want {
		if !contains(list, w) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestRestartWithOrdersInFlight restarts orders while its sagas provably
// wait: payments is stopped (SIGSTOP), so every saga reserves its stock and
// then parks at the charge step; orders restarts under them, payments
// continues, and every order must still end CONFIRMED. Payments is back long
// before a charge step times out, so nothing is compensated.
func TestRestartWithOrdersInFlight(t *testing.T) {
	ensureUp(t)
	token, _ := signup(t)
	p := gateway(t).InStock(50)
	pay := component(shop.PS(t), "payments")
	if pay.PID == 0 {
		t.Fatalf("payments has no pid: %+v", pay)
	}
	before := stockOf(t, p.ID)
	if err := syscall.Kill(pay.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resume := sync.OnceFunc(func() {
		if err := syscall.Kill(pay.PID, syscall.SIGCONT); err != nil {
			t.Errorf("continue payments: %v", err)
		}
	})
	defer resume()

	const n = 10
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i] = gateway(t).PlaceOrder(token, p.ID, testenv.GoodCard, 1, nil) })
	}
	wg.Wait()
	testenv.Until(t, 30*time.Second, "stock reserved for every order", func() bool { return stockOf(t, p.ID) == before-n })
	assertPending := func(when string) {
		t.Helper()
		for _, id := range ids {
			var o testenv.Order
			if st := gateway(t).Do("GET", "/api/v1/orders/"+id, token, nil, &o); st != http.StatusOK || o.Status != "PENDING" {
				t.Fatalf("order %s %s: %d %+v, want PENDING while payments is stopped", id, when, st, o)
			}
		}
	}
	assertPending("before the restart")
	shop.Must(t, "restart", "orders")
	assertPending("after the restart")
	resume()

	for _, id := range ids {
		if o := gateway(t).Settle(token, id, 60*time.Second); o.Status != "CONFIRMED" {
			t.Errorf("order %s: %+v, want CONFIRMED", id, o)
		}
	}
	if got := stockOf(t, p.ID); got != before-n {
		t.Errorf("stock after %d confirmed orders: %d, want %d", n, got, before-n)
	}
	if c := component(shop.PS(t), "orders"); c.State != state.StateHealthy {
		t.Errorf("orders after restart: %+v", c)
	}
	c := client(t)
	testenv.Until(t, 30*time.Second, "payments healthy and registered again", func() bool {
		s, err := c.Snapshot(t.Context())
		return err == nil && component(s.Components, "payments").State == state.StateHealthy && len(s.Registry["payments"]) == 1
	})
}
