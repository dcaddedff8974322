package durability

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSN returns the connection string of a service's database. It is asked
// anew for every round of checks: a restarted Postgres may listen elsewhere.
type DSN func(ctx context.Context, service string) (string, error)

// Check judges a load: every order reaches a final state within Final,
// and its effects (payment, stock, read model, notification) show within
// Settle after that.
type Check struct {
	Gateway string
	DSN     DSN
	Final   time.Duration
	Settle  time.Duration
}

// Stock reads the stock of products from inventory's database: the
// "initial" of the conservation check, taken before a load.
func Stock(ctx context.Context, dsn DSN, products ...string) (map[string]int, error) {
	conn, err := connect(ctx, dsn, "inventory")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return stock(ctx, conn, products)
}

func stock(ctx context.Context, conn *pgx.Conn, products []string) (map[string]int, error) {
	rows, err := conn.Query(ctx, `SELECT id, stock FROM products WHERE id = ANY($1)`, products)
	if err != nil {
		return nil, fmt.Errorf("read stock: %w", err)
	}
	out := map[string]int{}
	var id string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("read stock: %w", err)
	}
	if len(out) != len(products) {
		return nil, fmt.Errorf("stock of %v: found %d of them", products, len(out))
	}
	return out, nil
}

func connect(ctx context.Context, dsn DSN, service string) (*pgx.Conn, error) {
	s, err := dsn(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("%s's database: %w", service, err)
	}
	conn, err := pgx.Connect(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("%s's database: %w", service, err)
	}
	return conn, nil
}

// Run waits until the load's orders are final and their effects show, or
// the bounds pass, and reports what it found then. before is the stock of
// the load's product(s) taken just before the load; no other orders may
// change it meanwhile. An error means the check itself could not look.
func (c Check) Run(ctx context.Context, before map[string]int, res Result) (Report, error) {
	final := time.Now().Add(c.Final)
	var r Report
	var err error
	for {
		r, err = c.evaluate(ctx, before, res)
		if err == nil && r.Pending == 0 || time.Now().After(final) {
			break
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return r, ctx.Err()
		}
	}
	settle := time.Now().Add(c.Settle)
	for err != nil || len(r.Problems) > 0 && time.Now().Before(settle) {
		if !sleep(ctx, time.Second) {
			return r, ctx.Err()
		}
		if r, err = c.evaluate(ctx, before, res); err != nil && time.Now().After(settle) {
			return r, err
		}
	}
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// Report is what became of a load's orders.
type Report struct {
	Accepted, Refused, Retries int
	// Orders counts every order of the load's users: an order whose
	// acceptance never reached the client is one too.
	Orders, Confirmed, Cancelled int
	Pending                      int // not final when the check gave up
	Lost                         int // accepted (202) but not stored
	// DoubleCharges and DoubleRefunds count orders with more than one
	// payment row (payments keys its table by order, so these stay 0
	// unless that key goes); what a repeated charge or refund would
	// really leave behind, a payment contradicting the order, is in
	// WrongPayments.
	DoubleCharges, DoubleRefunds int
	// WrongPayments: a confirmed order without its charge, a cancelled one
	// still charged, a refund of an order that was not cancelled, an
	// amount that is not the order's total.
	WrongPayments int
	// StockDrift is, per product, current − (initial − confirmed).
	StockDrift map[string]int
	// Dangling counts reservations still held for cancelled orders;
	// Unreserved confirmed orders without a held reservation.
	Dangling, Unreserved int
	NotListed            int // final orders missing from their owner's list, or listed with another status
	NotNotified          int // final orders without exactly their one notification
	// LoadTime is how long the load ran, P99 the accept→final time of 99%
	// of the accepted orders (final is the order's last update).
	LoadTime, P99 time.Duration
	// Problems names each broken invariant with an example order.
	Problems []string
}

// OK is true when no invariant is broken.
func (r Report) OK() bool { return len(r.Problems) == 0 }

func (r Report) String() string {
	return fmt.Sprintf("orders accepted %d (refused %d, retried %d), stored %d: confirmed %d, cancelled %d, pending %d, lost %d; "+
		"double charges %d, double refunds %d, wrong payments %d; stock drift %v, dangling reservations %d, unreserved %d; "+
		"not in the owner's list %d, not notified %d; load %s, p99 accept→final %s",
		r.Accepted, r.Refused, r.Retries, r.Orders, r.Confirmed, r.Cancelled, r.Pending, r.Lost,
		r.DoubleCharges, r.DoubleRefunds, r.WrongPayments, r.StockDrift, r.Dangling, r.Unreserved,
		r.NotListed, r.NotNotified, r.LoadTime.Round(time.Millisecond), r.P99.Round(time.Millisecond))
}

// order is an order as stored by the orders service.
type order struct {
	id, user, status string
	total            int64
	items            []struct {
		ProductID string `json:"product_id"`
		Quantity  int    `json:"quantity"`
	}
	updated time.Time
}

// problem counts one broken invariant and remembers its first example.
func (r *Report) problem(n *int, what, orderID string) {
	if *n == 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%s (e.g. order %s)", what, orderID))
	}
	*n++
}

func (c Check) evaluate(ctx context.Context, before map[string]int, res Result) (Report, error) {
	r := Report{Accepted: len(res.Accepted), Retries: res.Retries, LoadTime: res.Elapsed, StockDrift: map[string]int{}}
	for _, n := range res.Refused {
		r.Refused += n
	}
	orders, err := c.orders(ctx, res.Users)
	if err != nil {
		return r, err
	}
	ids := make([]string, 0, len(orders))
	for id := range orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	r.Orders = len(orders)

	var latencies []time.Duration
	for _, a := range res.Accepted {
		o, ok := orders[a.ID]
		if !ok {
			r.problem(&r.Lost, "accepted but not stored", a.ID)
			continue
		}
		if o.status != "PENDING" {
			latencies = append(latencies, max(0, o.updated.Sub(a.At)))
		}
	}
	slices.Sort(latencies)
	if len(latencies) > 0 {
		r.P99 = latencies[(len(latencies)*99+99)/100-1]
	}
	expected := maps.Clone(before)
	for _, id := range ids {
		switch o := orders[id]; o.status {
		case "CONFIRMED":
			r.Confirmed++
			for _, it := range o.items {
				expected[it.ProductID] -= it.Quantity
			}
		case "CANCELLED":
			r.Cancelled++
		default:
			r.problem(&r.Pending, "not final within "+c.Final.String(), id)
		}
	}
	if err := c.payments(ctx, &r, orders, ids); err != nil {
		return r, err
	}
	if err := c.inventory(ctx, &r, orders, ids, before, expected); err != nil {
		return r, err
	}
	if err := c.notifications(ctx, &r, orders, ids); err != nil {
		return r, err
	}
	return r, c.readModel(ctx, &r, orders, res.Users)
}

// orders reads every order of users from the write model.
func (c Check) orders(ctx context.Context, users []User) (map[string]order, error) {
	conn, err := connect(ctx, c.DSN, "orders")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	uids := make([]string, len(users))
	for i, u := range users {
		uids[i] = u.ID
	}
	rows, err := conn.Query(ctx, `SELECT id, user_id, status, total_cents, items, updated_at FROM orders WHERE user_id = ANY($1)`, uids)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	out := map[string]order{}
	var o order
	var items []byte
	_, err = pgx.ForEachRow(rows, []any{&o.id, &o.user, &o.status, &o.total, &items, &o.updated}, func() error {
		o.items = nil
		if err := json.Unmarshal(items, &o.items); err != nil {
			return fmt.Errorf("order %s items %s: %w", o.id, items, err)
		}
		out[o.id] = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	return out, nil
}

// payments checks payments' one row per order against the order's fate.
// The table's key makes a second charge row impossible; a double charge
// or refund therefore shows as a payment whose status contradicts the
// order (charged twice for a cancelled order means charged and kept).
func (c Check) payments(ctx context.Context, r *Report, orders map[string]order, ids []string) error {
	conn, err := connect(ctx, c.DSN, "payments")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT order_id, count(*), min(status), max(status), max(amount_cents)
		FROM payments WHERE order_id = ANY($1) GROUP BY order_id`, ids)
	if err != nil {
		return fmt.Errorf("read payments: %w", err)
	}
	var (
		id, lo, hi    string
		n             int
		amount        int64
		charged       = map[string]bool{}
		wrong, double = &r.WrongPayments, &r.DoubleCharges
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &n, &lo, &hi, &amount}, func() error {
		o := orders[id]
		switch {
		case n > 1 && hi == "REFUNDED":
			r.problem(&r.DoubleRefunds, "more than one payment row, one refunded", id)
		case n > 1:
			r.problem(double, "more than one payment row", id)
		case hi == "CHARGED" && o.status == "CANCELLED":
			r.problem(wrong, "cancelled but the charge stands", id)
		case hi == "CHARGED" && amount != o.total:
			r.problem(wrong, fmt.Sprintf("charged %d for an order of %d", amount, o.total), id)
		case hi == "REFUNDED" && o.status != "CANCELLED":
			r.problem(wrong, "refunded but "+o.status, id)
		}
		charged[id] = lo == "CHARGED"
		return nil
	})
	if err != nil {
		return fmt.Errorf("read payments: %w", err)
	}
	for _, id := range ids {
		if orders[id].status == "CONFIRMED" && !charged[id] {
			r.problem(wrong, "confirmed without a charge", id)
		}
	}
	return nil
}

// inventory checks conservation: per product, initial − confirmed ==
// current, and that only confirmed orders hold their reservation.
func (c Check) inventory(ctx context.Context, r *Report, orders map[string]order, ids []string, before, expected map[string]int) error {
	conn, err := connect(ctx, c.DSN, "inventory")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	products := make([]string, 0, len(before))
	for p := range before {
		products = append(products, p)
	}
	now, err := stock(ctx, conn, products)
	if err != nil {
		return err
	}
	for _, p := range products {
		if d := now[p] - expected[p]; d != 0 {
			r.StockDrift[p] = d
			r.Problems = append(r.Problems, fmt.Sprintf("product %s: stock %d, want initial %d − confirmed %d = %d", p, now[p], before[p], before[p]-expected[p], expected[p]))
		}
	}
	rows, err := conn.Query(ctx, `SELECT order_id FROM reservations WHERE order_id = ANY($1) AND status = 'reserved'`, ids)
	if err != nil {
		return fmt.Errorf("read reservations: %w", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read reservations: %w", err)
	}
	for _, id := range held {
		if orders[id].status == "CANCELLED" {
			r.problem(&r.Dangling, "cancelled but its stock still reserved", id)
		}
	}
	for _, id := range ids {
		if orders[id].status == "CONFIRMED" && !slices.Contains(held, id) {
			r.problem(&r.Unreserved, "confirmed without a held reservation", id)
		}
	}
	return nil
}

// notifications checks that every final order has exactly the one
// notification of its outcome.
func (c Check) notifications(ctx context.Context, r *Report, orders map[string]order, ids []string) error {
	conn, err := connect(ctx, c.DSN, "notifications")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT order_id, array_agg(kind ORDER BY kind) FROM notifications WHERE order_id = ANY($1) GROUP BY order_id`, ids)
	if err != nil {
		return fmt.Errorf("read notifications: %w", err)
	}
	kinds := map[string][]string{}
	var id string
	var ks []string
	if _, err := pgx.ForEachRow(rows, []any{&id, &ks}, func() error { kinds[id] = slices.Clone(ks); return nil }); err != nil {
		return fmt.Errorf("read notifications: %w", err)
	}
	want := map[string]string{"CONFIRMED": "order_confirmed", "CANCELLED": "order_cancelled"}
	for _, id := range ids {
		if k, final := want[orders[id].status]; final && !slices.Equal(kinds[id], []string{k}) {
			r.problem(&r.NotNotified, fmt.Sprintf("%s with notifications %v", orders[id].status, kinds[id]), id)
		}
	}
	return nil
}

// readModel checks each user's order list through the gateway: every
// final order listed with its final status.
func (c Check) readModel(ctx context.Context, r *Report, orders map[string]order, users []User) error {
	listed := map[string]string{}
	for _, u := range users {
		status, body, err := call(ctx, "GET", c.Gateway+"/api/v1/orders", u.Token, nil, nil)
		if err != nil {
			return fmt.Errorf("GET /api/v1/orders: %w", err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET /api/v1/orders: %d %s", status, body)
		}
		var list []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return fmt.Errorf("GET /api/v1/orders: %w", err)
		}
		for _, o := range list {
			listed[o.ID] = o.Status
		}
	}
	for id, o := range orders {
		if o.status != "PENDING" && listed[id] != o.status {
			r.problem(&r.NotListed, fmt.Sprintf("%s but listed as %q", o.status, listed[id]), id)
		}
	}
	return nil
}
