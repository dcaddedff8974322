package systest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/internal/systest"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/auth/authtest"
	"github.com/msctl/msctl/services/kit/bus"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Seeded products (services/inventory/migrations) and cards.
const (
	keyboard     = testenv.Keyboard                       // 8900 cents
	cable        = testenv.Cable                          // 900 cents
	docking      = "0d9a2d03-a28a-450a-8e07-fd1643d11f59" // out of stock
	goodCard     = testenv.GoodCard
	declinedCard = testenv.DeclinedCard
	failingCard  = testenv.FailingCard
)

// shop is the saga's services, talked to directly (no gateway).
type shop struct {
	t    testing.TB
	env  *systest.Env
	http *http.Client
	dbs  map[string]*pgxpool.Pool
	bus  *bus.Bus
}

// sagaServices are started in dependency order.
var sagaServices = []string{"inventory", "payments", "notifications", "orders"}

func startShop(t testing.TB, extra map[string]map[string]string) *shop {
	t.Helper()
	systest.Build(t, sagaServices...)
	env := systest.New(t)
	env.StartUsersStandIn()
	s := &shop{t: t, env: env, http: &http.Client{Timeout: 10 * time.Second}, dbs: map[string]*pgxpool.Pool{}}
	for _, name := range sagaServices {
		svc := env.Start(name, extra[name])
		db, err := pgxpool.New(context.Background(), svc.DSN)
		if err != nil {
			t.Fatal(err)
		}
		s.dbs[name] = db
	}
	nc, err := nats.Connect(env.NATS.URL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	if s.bus, err = bus.New(nc, nil); err != nil {
		t.Fatal(err)
	}
	// Closed before the services stop and their databases are dropped.
	t.Cleanup(func() {
		nc.Close()
		for _, db := range s.dbs {
			db.Close()
		}
	})
	return s
}

type item struct {
	ProductID      string `json:"product_id"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents *int64 `json:"unit_price_cents,omitempty"`
}

// order is the whole order as orders answers it to its owner.
type order struct {
	testenv.Order
	UserID     string    `json:"user_id"`
	Items      []item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	CreatedAt  time.Time `json:"created_at"`
}

// do calls a service directly as user (none when empty), with a bearer
// token for user like the one the gateway forwards, and decodes a 2xx
// answer into out.
func (s *shop) do(method, svc, path, user string, hdr map[string]string, body any, out any) int {
	s.t.Helper()
	h := http.Header{}
	if user != "" {
		h.Set("Authorization", authtest.Bearer(s.t, user))
	}
	for k, v := range hdr {
		h.Set(k, v)
	}
	api := testenv.API{T: s.t, Base: s.env.URL(svc), Client: s.http}
	return api.Call(method, path, "", h, body).Decode(s.t, out)
}

// place posts an order and returns its id; it fails the test unless 202.
func (s *shop) place(user, idemKey, card string, items ...item) string {
	s.t.Helper()
	var out struct{ ID, Status string }
	hdr := map[string]string{}
	if idemKey != "" {
		hdr["Idempotency-Key"] = idemKey
	}
	code := s.do("POST", "orders", "/api/v1/orders", user, hdr, map[string]any{"items": items, "card_number": card}, &out)
	if code != http.StatusAccepted || out.ID == "" || out.Status != "PENDING" {
		s.t.Fatalf("place order: %d %+v", code, out)
	}
	return out.ID
}

func (s *shop) order(user, id string) (order, int) {
	s.t.Helper()
	var o order
	code := s.do("GET", "orders", "/api/v1/orders/"+id, user, nil, nil, &o)
	return o, code
}

// settle waits until the order leaves PENDING.
func (s *shop) settle(user, id string, timeout time.Duration) order {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		o, code := s.order(user, id)
		if code != http.StatusOK {
			s.t.Fatalf("get order %s: %d", id, code)
		}
		if o.Status != "PENDING" {
			return o
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("order %s still PENDING after %v", id, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventually retries cond until it holds or timeout passes.
func (s *shop) eventually(what string, timeout time.Duration, cond func() error) {
	s.t.Helper()
	testenv.Eventually(s.t, timeout, what, cond)
}

func (s *shop) stock(productID string) int {
	s.t.Helper()
	var p struct {
		Stock int `json:"stock"`
	}
	if code := s.do("GET", "inventory", "/internal/products/"+productID, "", nil, nil, &p); code != http.StatusOK {
		s.t.Fatalf("get product %s: %d", productID, code)
	}
	return p.Stock
}

type payment struct {
	OrderID     string `json:"order_id"`
	Status      string `json:"status"`
	AmountCents int64  `json:"amount_cents"`
	CardLast4   string `json:"card_last4"`
}

func (s *shop) payment(orderID string) (payment, int) {
	s.t.Helper()
	var p payment
	code := s.do("GET", "payments", "/internal/payments?order_id="+orderID, "", nil, nil, &p)
	return p, code
}

type notification struct {
	ID      string `json:"id"`
	OrderID string `json:"order_id"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (s *shop) notifications(user, orderID string) []notification {
	s.t.Helper()
	var ns []notification
	if code := s.do("GET", "notifications", "/api/v1/notifications?order_id="+orderID, user, nil, nil, &ns); code != http.StatusOK {
		s.t.Fatalf("list notifications: %d", code)
	}
	return ns
}

// count runs a counting query on a service's database.
func (s *shop) count(svc, sql string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.dbs[svc].QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		s.t.Fatalf("%s: %s: %v", svc, sql, err)
	}
	return n
}

// loadProducts are the products load runs spread their orders over, so
// that not every reservation waits for the same row lock.
var loadProducts = []string{
	keyboard, cable,
	"fe9cc123-161a-45cd-87e1-7236b398020b", // mouse
	"70820ef6-6e2f-4a42-b18d-26baf5e3d987", // monitor
	"6d4947b4-8939-4f55-a7fc-26ec48194714", // headset
}

// setStock gives products plenty of stock for load runs.
func (s *shop) setStock(productIDs []string, n int) {
	s.t.Helper()
	if _, err := s.dbs["inventory"].Exec(context.Background(), `UPDATE products SET stock = $2 WHERE id = ANY($1)`, productIDs, n); err != nil {
		s.t.Fatal(err)
	}
}

// outboxDrained checks that no service has unsent outbox rows.
func (s *shop) outboxDrained() error {
	var pending []string
	for _, svc := range []string{"orders", "inventory", "payments"} {
		if n := s.count(svc, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n > 0 {
			pending = append(pending, fmt.Sprintf("%s: %d", svc, n))
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("unsent outbox rows: %s", strings.Join(pending, ", "))
	}
	return nil
}

func (s *shop) readModel() []string {
	s.t.Helper()
	rows, err := s.dbs["orders"].Query(context.Background(),
		`SELECT concat_ws('|', order_id, user_id, status, reason, items::text, total_cents, created_at, updated_at) FROM order_views ORDER BY order_id`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// streamCount counts the messages on subject in stream about orderID.
func (s *shop) streamCount(stream, subject, orderID string) int {
	s.t.Helper()
	n := 0
	_, err := s.bus.Replay(context.Background(), stream, []string{subject}, func(m bus.Message) error {
		var p struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal(m.Envelope.Data, &p); err != nil {
			return err
		}
		if p.OrderID == orderID {
			n++
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// duplicateEverything republishes every command and event once more under a
// new Nats-Msg-Id (so stream dedup lets it through and only the consumers'
// inboxes can absorb it) until stop is called.
func (s *shop) duplicateEverything(originals, copies *atomic.Int64) (stop func()) {
	s.t.Helper()
	nc, err := nats.Connect(s.env.NATS.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	js := s.bus.JetStream()
	var inflight sync.WaitGroup
	var subs []*nats.Subscription
	for _, subject := range []string{"inventory.>", "payments.>", "orders.>"} {
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
			id := m.Header.Get(jetstream.MsgIDHeader)
			if strings.HasPrefix(id, "copy:") {
				return
			}
			originals.Add(1)
			out := nats.NewMsg(m.Subject)
			out.Data = m.Data
			for k, v := range m.Header {
				out.Header[k] = v
			}
			out.Header.Set(jetstream.MsgIDHeader, "copy:"+id)
			inflight.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := js.PublishMsg(ctx, out); err == nil {
					copies.Add(1)
				}
			})
		})
		if err != nil {
			s.t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	if err := nc.Flush(); err != nil {
		s.t.Fatal(err)
	}
	return func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
		nc.Close()
		inflight.Wait()
	}
}

// ids runs a query returning one text column.
func (s *shop) ids(svc, sql string) []string {
	s.t.Helper()
	rows, err := s.dbs[svc].Query(context.Background(), sql)
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

type loadResult struct {
	ids     []string
	refused int
	elapsed time.Duration
}

// load places n one-item orders (over loadProducts) from clients concurrent users named
// prefix-<client>. after(placed) runs on the placing goroutine after each
// accepted order, with the running count.
func (s *shop) load(n, clients int, prefix string, after func(placed int)) loadResult {
	s.t.Helper()
	var (
		mu      sync.Mutex
		res     loadResult
		next    atomic.Int64
		wg      sync.WaitGroup
		started = time.Now()
	)
	bodies := make([][]byte, len(loadProducts))
	for i, p := range loadProducts {
		bodies[i], _ = json.Marshal(map[string]any{"items": []item{{ProductID: p, Quantity: 1}}, "card_number": goodCard})
	}
	url := s.env.URL("orders") + "/api/v1/orders"
	tokens := make([]string, clients)
	for c := range clients {
		tokens[c] = authtest.Bearer(s.t, fmt.Sprintf("%s-%d", prefix, c))
	}
	for c := range clients {
		wg.Go(func() {
			token := tokens[c]
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(bodies[i%int64(len(bodies))]))
				req.Header.Set("Authorization", token)
				var out struct{ ID string }
				resp, err := s.http.Do(req)
				ok := err == nil && resp.StatusCode == http.StatusAccepted
				if err == nil {
					ok = ok && json.NewDecoder(resp.Body).Decode(&out) == nil
					resp.Body.Close()
				}
				mu.Lock()
				if !ok {
					res.refused++
					mu.Unlock()
					continue
				}
				res.ids = append(res.ids, out.ID)
				placed := len(res.ids)
				mu.Unlock()
				if after != nil {
					after(placed)
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(started)
	return res
}
