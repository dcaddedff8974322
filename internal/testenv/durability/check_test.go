package durability

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/internal/testenv"
	inventory "github.com/msctl/msctl/services/inventory/migrations"
	"github.com/msctl/msctl/services/kit/pg"
	notifications "github.com/msctl/msctl/services/notifications/migrations"
	orders "github.com/msctl/msctl/services/orders/migrations"
	payments "github.com/msctl/msctl/services/payments/migrations"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	product   = testenv.Cable // seeded by inventory's migrations with 500
	user      = "u-1"
	confirmed = "o-confirmed"
	cancelled = "o-cancelled"
)

// shop is the services' real schemas on a real Postgres, holding what a
// load of two orders by one user leaves when all went well (one confirmed,
// one declined), and a stand-in for the gateway's order list (ours to
// fake).
type shop struct {
	db     map[string]*pgxpool.Pool
	listed map[string]string // order id → status in the owner's list
	check  Check
	res    Result
}

func newShop(t *testing.T) *shop {
	t.Helper()
	s := &shop{db: map[string]*pgxpool.Pool{}, listed: map[string]string{confirmed: "CONFIRMED", cancelled: "CANCELLED"}}
	dsns := map[string]string{}
	for name, migrations := range map[string]fs.FS{"orders": orders.FS, "payments": payments.FS, "inventory": inventory.FS, "notifications": notifications.FS} {
		dsns[name] = testenv.Database(t, name)
		pool, err := pg.Open(t.Context(), dsns[name], migrations)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s.db[name] = pool
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/orders" || r.Header.Get("Authorization") != "Bearer token-1" {
			http.Error(w, "unexpected request", http.StatusNotFound)
			return
		}
		var list []map[string]string
		for id, st := range s.listed {
			list = append(list, map[string]string{"id": id, "status": st})
		}
		_ = json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(gw.Close)
	s.check = Check{Gateway: gw.URL, DSN: func(_ context.Context, svc string) (string, error) { return dsns[svc], nil }}
	now := time.Now()
	s.res = Result{
		Users:    []User{{ID: user, Token: "token-1"}},
		Accepted: []Accepted{{ID: confirmed, User: user, At: now.Add(-2 * time.Second)}, {ID: cancelled, User: user, At: now.Add(-time.Second)}},
	}
	items := `[{"product_id":"` + product + `","quantity":1,"unit_price_cents":900}]`
	s.exec(t, "orders", `INSERT INTO orders (id, user_id, status, items, total_cents, request_hash, created_at, updated_at)
		VALUES ($1, $3, 'CONFIRMED', $4, 900, 'h1', now(), now()), ($2, $3, 'CANCELLED', $4, 900, 'h2', now(), now())`, confirmed, cancelled, user, items)
	s.exec(t, "payments", `INSERT INTO payments (order_id, user_id, status, amount_cents, card_last4)
		VALUES ($1, $3, 'CHARGED', 900, '4242'), ($2, $3, 'DECLINED', 900, '0002')`, confirmed, cancelled, user)
	s.exec(t, "inventory", `INSERT INTO reservations (order_id, status) VALUES ($1, 'reserved'), ($2, 'released')`, confirmed, cancelled)
	s.exec(t, "inventory", `UPDATE products SET stock = stock - 1 WHERE id = $1`, product)
	s.exec(t, "notifications", `INSERT INTO notifications (id, order_id, user_id, kind, message)
		VALUES ('n1', $1, $3, 'order_confirmed', 'ok'), ('n2', $2, $3, 'order_cancelled', 'no')`, confirmed, cancelled, user)
	return s
}

func (s *shop) exec(t *testing.T, db, sql string, args ...any) {
	t.Helper()
	if _, err := s.db[db].Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %s: %v", db, sql, err)
	}
}

// TestCheckBites breaks each invariant in turn, on real schemas, and
// expects the check to count it and name the order; the untouched shop
// passes.
func TestCheckBites(t *testing.T) {
	testenv.SkipShort(t, "needs Postgres")
	for _, tc := range []struct {
		name string
		// sql spoils service db's database, with arg as $1; spoil, when
		// set, spoils what is not in a database.
		db, sql, arg string
		spoil        func(s *shop)
		count        func(r Report) int
		want         string
	}{
		{name: "nothing broken", count: func(r Report) int { return len(r.Problems) }},
		{name: "lost", spoil: func(s *shop) {
			s.res.Accepted = append(s.res.Accepted, Accepted{ID: "o-lost", User: user, At: time.Now()})
		},
			count: func(r Report) int { return r.Lost }, want: "accepted but not stored (e.g. order o-lost)"},
		{"pending", "orders", `UPDATE orders SET status = 'PENDING' WHERE id = $1`, cancelled, nil,
			func(r Report) int { return r.Pending }, "not final within 0s (e.g. order o-cancelled)"},
		{"cancelled still charged", "payments", `UPDATE payments SET status = 'CHARGED' WHERE order_id = $1`, cancelled, nil,
			func(r Report) int { return r.WrongPayments }, "cancelled but the charge stands (e.g. order o-cancelled)"},
		{"confirmed without a charge", "payments", `DELETE FROM payments WHERE order_id = $1`, confirmed, nil,
			func(r Report) int { return r.WrongPayments }, "confirmed without a charge (e.g. order o-confirmed)"},
		{"refund of a confirmed order", "payments", `UPDATE payments SET status = 'REFUNDED', refunded_at = now() WHERE order_id = $1`, confirmed, nil,
			func(r Report) int { return r.WrongPayments }, "refunded but CONFIRMED (e.g. order o-confirmed)"},
		{"stock not taken", "inventory", `UPDATE products SET stock = stock + 1 WHERE id = $1`, product, nil,
			func(r Report) int { return r.StockDrift[product] }, "stock 500, want initial 500 − confirmed 1 = 499"},
		{"dangling reservation", "inventory", `UPDATE reservations SET status = 'reserved' WHERE order_id = $1`, cancelled, nil,
			func(r Report) int { return r.Dangling }, "cancelled but its stock still reserved (e.g. order o-cancelled)"},
		{"not notified", "notifications", `DELETE FROM notifications WHERE order_id = $1`, confirmed, nil,
			func(r Report) int { return r.NotNotified }, "CONFIRMED with notifications [] (e.g. order o-confirmed)"},
		{name: "not in the owner's list", spoil: func(s *shop) { delete(s.listed, cancelled) },
			count: func(r Report) int { return r.NotListed }, want: `CANCELLED but listed as "" (e.g. order o-cancelled)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newShop(t)
			if tc.sql != "" {
				s.exec(t, tc.db, tc.sql, tc.arg)
			}
			if tc.spoil != nil {
				tc.spoil(s)
			}
			r, err := s.check.Run(t.Context(), map[string]int{product: 500}, s.res)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if !r.OK() || r.Confirmed != 1 || r.Cancelled != 1 || r.P99 <= 0 {
					t.Errorf("untouched shop: %s; problems %q", r, r.Problems)
				}
				return
			}
			if tc.count(r) < 1 || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], tc.want) {
				t.Errorf("counted %d, problems %q; want it counted and only %q", tc.count(r), r.Problems, tc.want)
			}
		})
	}
}
