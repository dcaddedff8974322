package systest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSaga runs the order saga end to end against real processes, Postgres,
// NATS and etcd. The subtests share one system (starting it costs seconds)
// and use their own users, so their assertions do not overlap.
func TestSaga(t *testing.T) {
	if testing.Short() {
		t.Skip("system test")
	}
	s := startShop(t, map[string]map[string]string{
		// Short enough that a lost step is re-sent within the test's patience.
		"orders": {"ORDERS_SAGA_STEP_TIMEOUT": "5s"},
	})

	t.Run("happy path", func(t *testing.T) {
		s := s.with(t)
		before := s.stock(keyboard)
		id := s.place("alice", "", goodCard, item{ProductID: keyboard, Quantity: 2})
		o := s.settle("alice", id, 10*time.Second)
		if o.Status != "CONFIRMED" || o.TotalCents != 2*8900 || o.Reason != "" {
			t.Fatalf("order = %+v", o)
		}
		if got := s.stock(keyboard); got != before-2 {
			t.Errorf("stock %d, want %d", got, before-2)
		}
		p, code := s.payment(id)
		if code != http.StatusOK || p.Status != "CHARGED" || p.AmountCents != 2*8900 || p.CardLast4 != "4242" {
			t.Errorf("payment = %d %+v", code, p)
		}
		s.eventually("one confirmation", 5*time.Second, func() error {
			ns := s.notifications("alice", id)
			if len(ns) != 1 || ns[0].Kind != "order_confirmed" {
				return fmt.Errorf("notifications = %+v", ns)
			}
			return nil
		})
		if _, code := s.order("mallory", id); code != http.StatusNotFound {
			t.Errorf("another user reads the order: %d", code)
		}
	})

	t.Run("declined card", func(t *testing.T) {
		s := s.with(t)
		for _, tc := range []struct{ card, reason string }{
			{declinedCard, "payment declined: card declined"},
			{failingCard, "payment failed: processing error"},
		} {
			before := s.stock(keyboard)
			id := s.place("bob", "", tc.card, item{ProductID: keyboard, Quantity: 1})
			o := s.settle("bob", id, 10*time.Second)
			if o.Status != "CANCELLED" || o.Reason != tc.reason {
				t.Fatalf("order = %+v, want CANCELLED with %q", o, tc.reason)
			}
			if got := s.stock(keyboard); got != before {
				t.Errorf("stock %d, want it back at %d", got, before)
			}
			if p, code := s.payment(id); code != http.StatusOK || p.Status == "CHARGED" || p.Status == "REFUNDED" {
				t.Errorf("payment = %d %+v, want no charge", code, p)
			}
			s.eventually("one cancellation notice", 5*time.Second, func() error {
				if ns := s.notifications("bob", id); len(ns) != 1 || ns[0].Kind != "order_cancelled" {
					return fmt.Errorf("notifications = %+v", ns)
				}
				return nil
			})
		}
	})

	t.Run("insufficient stock", func(t *testing.T) {
		s := s.with(t)
		id := s.place("carol", "", goodCard, item{ProductID: cable, Quantity: 1}, item{ProductID: docking, Quantity: 1})
		o := s.settle("carol", id, 10*time.Second)
		if o.Status != "CANCELLED" || !strings.Contains(o.Reason, "insufficient stock") {
			t.Fatalf("order = %+v", o)
		}
		if _, code := s.payment(id); code != http.StatusNotFound {
			t.Errorf("payment lookup = %d, want 404: no charge attempted", code)
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		s := s.with(t)
		first := s.place("dave", "key-1", goodCard, item{ProductID: cable, Quantity: 1})
		again := s.place("dave", "key-1", goodCard, item{ProductID: cable, Quantity: 1})
		if again != first {
			t.Fatalf("replay gave %s, want %s", again, first)
		}
		// The same key of another user is another order.
		if other := s.place("erin", "key-1", goodCard, item{ProductID: cable, Quantity: 1}); other == first {
			t.Fatal("keys are not per user")
		}
		code := s.do("POST", "orders", "/api/v1/orders", "dave", map[string]string{"Idempotency-Key": "key-1"},
			map[string]any{"items": []item{{ProductID: cable, Quantity: 5}}, "card_number": goodCard}, nil)
		if code != http.StatusConflict {
			t.Errorf("key reused for another order: %d, want 409", code)
		}
		s.settle("dave", first, 10*time.Second)
		if n := s.count("orders", `SELECT count(*) FROM orders WHERE user_id = 'dave'`); n != 1 {
			t.Errorf("dave has %d orders, want 1", n)
		}
		if n := s.count("payments", `SELECT count(*) FROM payments WHERE order_id = $1`, first); n != 1 {
			t.Errorf("%d payments, want 1", n)
		}
	})
}

// with rebinds the helpers to a subtest so failures are reported there.
func (s *shop) with(t testing.TB) *shop {
	c := *s
	c.t = t
	return &c
}
