package systest_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
)

// TestSaga runs the order saga end to end against real processes, Postgres,
// NATS and etcd. The subtests share one system (starting it costs seconds)
// and use their own users, so their assertions do not overlap.
func TestSaga(t *testing.T) {
	testenv.SkipShort(t, "system test")
	s := startShop(t, nil)

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
	t.Run("one order is one trace", func(t *testing.T) {
		s := s.with(t)
		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		var out struct{ ID string }
		code := s.do("POST", "orders", "/api/v1/orders", "ivan", map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"},
			map[string]any{"items": []item{{ProductID: cable, Quantity: 1}}, "card_number": goodCard}, &out)
		if code != http.StatusAccepted {
			t.Fatalf("place: %d", code)
		}
		if o := s.settle("ivan", out.ID, 10*time.Second); o.Status != "CONFIRMED" {
			t.Fatalf("order = %+v", o)
		}
		// Every message about the order, whichever service wrote it, carries the trace.
		for svc, want := range map[string]int{"orders": 4, "inventory": 1, "payments": 1} {
			q := `SELECT count(*) FROM outbox WHERE convert_from(payload, 'UTF8') LIKE '%' || $1 || '%'
				AND headers->'traceparent'->>0 LIKE '00-' || $2 || '-%'`
			if n := s.count(svc, q, out.ID, traceID); n != want {
				t.Errorf("%s: %d traced messages about the order, want %d", svc, n, want)
			}
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
	t.Run("orders killed mid-saga resumes", func(t *testing.T) {
		s := s.with(t)
		// With payments down every saga stops at the charge step.
		s.env.Stop("payments")
		ids := make([]string, 20)
		for i := range ids {
			ids[i] = s.place("frank", "", goodCard, item{ProductID: cable, Quantity: 1})
		}
		s.eventually("sagas waiting for the charge", 10*time.Second, func() error {
			if n := s.count("orders", `SELECT count(*) FROM sagas s JOIN orders o ON o.id = s.order_id
				WHERE o.user_id = 'frank' AND s.step = 'charge'`); n != len(ids) {
				return fmt.Errorf("%d of %d sagas at the charge step", n, len(ids))
			}
			return nil
		})
		s.env.Kill("orders")
		s.env.Resume("orders")
		s.env.Resume("payments")
		for _, id := range ids {
			if o := s.settle("frank", id, 20*time.Second); o.Status != "CONFIRMED" {
				t.Errorf("order %s = %+v", id, o)
			}
		}
	})

	t.Run("relay killed between publish and mark", func(t *testing.T) {
		s := s.with(t)
		before := s.stock(keyboard)
		s.env.Stop("orders")
		s.env.SetEnv("orders", "OUTBOX_CRASH_AFTER_PUBLISH", "1")
		s.env.StartNoWait("orders")
		s.env.WaitReady("orders")
		id := s.place("grace", "", goodCard, item{ProductID: keyboard, Quantity: 1})
		// The relay publishes the reserve command and OrderCreated, then dies before marking them.
		if err := s.env.WaitExit("orders", 10*time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
			t.Fatalf("orders exited with %v, want the relay's crash (exit status 3)", err)
		}
		if n := s.count("orders", `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n == 0 {
			t.Fatal("the crash left no unmarked rows: nothing to republish")
		}
		s.env.SetEnv("orders", "OUTBOX_CRASH_AFTER_PUBLISH", "")
		s.env.Resume("orders")
		// The republished rows carry the same ids: the streams drop them.
		o := s.settle("grace", id, 20*time.Second)
		if o.Status != "CONFIRMED" {
			t.Fatalf("order = %+v", o)
		}
		if got := s.stock(keyboard); got != before-1 {
			t.Errorf("stock %d, want %d (reserved once)", got, before-1)
		}
		if n := s.streamCount("ORDERS_EVT", "orders.evt.created", id); n != 1 {
			t.Errorf("%d OrderCreated messages in the stream, want 1", n)
		}
		if n := s.streamCount("INVENTORY_CMD", "inventory.cmd.reserve", id); n != 1 {
			t.Errorf("%d reserve commands in the stream, want 1", n)
		}
		s.eventually("outbox drained", 10*time.Second, s.outboxDrained)
	})

	t.Run("every message delivered twice", func(t *testing.T) {
		s := s.with(t)
		var originals, copies atomic.Int64
		stop := s.duplicateEverything(&originals, &copies)
		before := s.stock(cable)
		cards := []string{goodCard, goodCard, declinedCard, failingCard}
		ids := make([]string, 24)
		for i := range ids {
			ids[i] = s.place("heidi", "", cards[i%len(cards)], item{ProductID: cable, Quantity: 1})
		}
		confirmed := 0
		for _, id := range ids {
			if s.settle("heidi", id, 20*time.Second).Status == "CONFIRMED" {
				confirmed++
			}
		}
		if confirmed != 12 {
			t.Errorf("%d confirmed, want 12", confirmed)
		}
		s.eventually("notifications and outboxes settle", 10*time.Second, func() error {
			if n := len(s.notifications("heidi", "")); n != len(ids) {
				return fmt.Errorf("%d notifications, want %d", n, len(ids))
			}
			return s.outboxDrained()
		})
		stop()
		if originals.Load() == 0 || copies.Load() != originals.Load() {
			t.Fatalf("duplicated %d of %d messages", copies.Load(), originals.Load())
		}
		// The copies changed nothing: same outcome as single delivery.
		if got := s.stock(cable); got != before-confirmed {
			t.Errorf("stock %d, want %d", got, before-confirmed)
		}
		if n := s.count("payments", `SELECT count(*) FROM payments WHERE user_id = 'heidi' AND status = 'CHARGED'`); n != confirmed {
			t.Errorf("%d charges, want %d", n, confirmed)
		}
		if n := s.count("notifications", `SELECT count(*) FROM notifications WHERE user_id = 'heidi'`); n != len(ids) {
			t.Errorf("%d notifications, want %d", n, len(ids))
		}
	})
	t.Run("payments fault knob", func(t *testing.T) {
		s := s.with(t)
		set := func(rate float64, latency int) {
			t.Helper()
			if code := s.do("POST", "payments", "/internal/faults", "", nil, map[string]any{"failure_rate": rate, "latency_ms": latency}, nil); code != http.StatusOK {
				t.Fatalf("set faults: %d", code)
			}
		}
		set(1, 0)
		if _, code := s.payment("any-order"); code != http.StatusServiceUnavailable {
			t.Errorf("lookup with failure_rate 1: %d, want 503", code)
		}
		// Charges fail too: the command is retried, then parked.
		id := s.place("judy", "", goodCard, item{ProductID: cable, Quantity: 1})
		s.eventually("charge attempted and failing", 10*time.Second, func() error {
			if n := s.count("orders", `SELECT count(*) FROM sagas WHERE order_id = $1 AND step = 'charge'`, id); n != 1 {
				return fmt.Errorf("saga not at the charge step")
			}
			return nil
		})
		set(0, 0)
		if _, code := s.payment("any-order"); code != http.StatusNotFound {
			t.Errorf("lookup with the knob off: %d, want 404", code)
		}
		if code := s.do("POST", "payments", "/internal/faults", "", nil, map[string]any{"failure_rate": 2}, nil); code != http.StatusBadRequest {
			t.Errorf("failure_rate 2: %d, want 400", code)
		}
		// The retried (or, once parked, re-sent) charge goes through after the knob is off.
		if o := s.settle("judy", id, 90*time.Second); o.Status != "CONFIRMED" {
			t.Errorf("order = %+v", o)
		}
	})

	t.Run("nothing lost across broker restarts", func(t *testing.T) {
		s := s.with(t)
		s.setStock(loadProducts, 1_000_000)
		const orders, clients = 2000, 20
		var restarts atomic.Int32
		res := s.load(orders, clients, "load", func(placed int) {
			// Restart the broker at a third and at two thirds of the run.
			if placed == orders/3 || placed == 2*orders/3 {
				if err := s.env.NATS.Restart(); err != nil {
					t.Errorf("restart nats: %v", err)
				}
				restarts.Add(1)
			}
		})
		if restarts.Load() != 2 {
			t.Fatalf("broker restarted %d times, want 2", restarts.Load())
		}
		if len(res.ids) < orders*99/100 {
			t.Fatalf("only %d of %d orders accepted (%d refused)", len(res.ids), orders, res.refused)
		}
		s.eventually("every accepted order final", 120*time.Second, func() error {
			if n := s.count("orders", `SELECT count(*) FROM orders WHERE user_id LIKE 'load-%' AND status = 'PENDING'`); n > 0 {
				return fmt.Errorf("%d orders still PENDING", n)
			}
			return nil
		})
		if n := s.count("orders", `SELECT count(*) FROM orders WHERE user_id LIKE 'load-%'`); n != len(res.ids) {
			t.Errorf("%d orders stored, %d accepted", n, len(res.ids))
		}
		confirmed := s.ids("orders", `SELECT id FROM orders WHERE user_id LIKE 'load-%' AND status = 'CONFIRMED' ORDER BY id`)
		charged := s.ids("payments", `SELECT order_id FROM payments WHERE user_id LIKE 'load-%' AND status = 'CHARGED' ORDER BY order_id`)
		if !slices.Equal(confirmed, charged) {
			t.Errorf("%d confirmed orders but %d charges standing", len(confirmed), len(charged))
		}
		t.Logf("%d accepted, %d confirmed, %d refused at the door; cancellations: %v", len(res.ids), len(confirmed), res.refused,
			s.ids("orders", `SELECT reason || ' x' || count(*) FROM orders WHERE user_id LIKE 'load-%' AND status = 'CANCELLED' GROUP BY reason`))
		s.eventually("outboxes drained and every outcome notified", 60*time.Second, func() error {
			if n := s.count("notifications", `SELECT count(*) FROM notifications WHERE user_id LIKE 'load-%'`); n != len(res.ids) {
				return fmt.Errorf("%d notifications for %d orders", n, len(res.ids))
			}
			return s.outboxDrained()
		})
		if n := s.count("orders", `SELECT count(*) FROM orders WHERE user_id LIKE 'load-%' AND status = 'CANCELLED' AND reason <> ''`); n != len(res.ids)-len(confirmed) {
			t.Errorf("%d cancelled orders with a reason, want %d", n, len(res.ids)-len(confirmed))
		}
	})

	t.Run("read model rebuilt from the stream equals the live one", func(t *testing.T) {
		s := s.with(t)
		var live []string
		s.eventually("read model caught up", 60*time.Second, func() error {
			views := s.count("orders", `SELECT count(*) FROM order_views WHERE status <> 'PENDING'`)
			final := s.count("orders", `SELECT count(*) FROM orders WHERE status <> 'PENDING'`)
			all := s.count("orders", `SELECT count(*) FROM orders`)
			if views != final || final != all {
				return fmt.Errorf("%d final views, %d final orders of %d", views, final, all)
			}
			live = s.readModel()
			return nil
		})
		var out struct {
			Events int `json:"events"`
		}
		if code := s.do("POST", "orders", "/internal/read-model/rebuild", "", nil, nil, &out); code != http.StatusOK {
			t.Fatalf("rebuild: %d", code)
		}
		rebuilt := s.readModel()
		if out.Events < len(live) || !slices.Equal(live, rebuilt) {
			t.Fatalf("rebuilt from %d events: %d rows vs %d live; first difference: %s", out.Events, len(rebuilt), len(live), firstDiff(live, rebuilt))
		}
		var list []order
		if code := s.do("GET", "orders", "/api/v1/orders", "heidi", nil, nil, &list); code != http.StatusOK || len(list) != 24 {
			t.Fatalf("heidi's order list: %d, %d orders", code, len(list))
		}
	})

}

// with rebinds the helpers to a subtest so failures are reported there.
func (s *shop) with(t testing.TB) *shop {
	c := *s
	c.t = t
	return &c
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " != " + b[i]
		}
	}
	return "(lengths differ)"
}

// TestSagaRefundsATimedOutCharge shows the compensation path: payments is
// slowed past the saga's step timeout, the saga gives up on the charge,
// refunds it (it did go through, late) and releases the stock.
func TestSagaRefundsATimedOutCharge(t *testing.T) {
	testenv.SkipShort(t, "system test")
	s := startShop(t, map[string]map[string]string{
		"orders":   {"ORDERS_SAGA_STEP_TIMEOUT": "1s", "ORDERS_SAGA_MAX_ATTEMPTS": "2"},
		"payments": {"PAYMENTS_LATENCY": "3s"},
	})
	before := s.stock(keyboard)
	id := s.place("kim", "", goodCard, item{ProductID: keyboard, Quantity: 1})
	o := s.settle("kim", id, 30*time.Second)
	if o.Status != "CANCELLED" || o.Reason != "payment timed out" {
		t.Fatalf("order = %+v", o)
	}
	if got := s.stock(keyboard); got != before {
		t.Errorf("stock %d, want it released back to %d", got, before)
	}
	s.eventually("the late charge refunded", 15*time.Second, func() error {
		if p, code := s.payment(id); code != http.StatusOK || p.Status != "REFUNDED" {
			return fmt.Errorf("payment = %d %+v", code, p)
		}
		return nil
	})
	// Late replies to the abandoned charge change nothing.
	time.Sleep(4 * time.Second)
	if o, _ := s.order("kim", id); o.Status != "CANCELLED" {
		t.Errorf("order changed after compensation: %+v", o)
	}
}
