package testenv

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/infra/freeport"
)

// Seeded by services/inventory/migrations.
const (
	Keyboard = "bf16a7f8-dad1-48c7-9049-62fbe5440f29" // 8900 cents
	Cable    = "224c7270-6004-47fc-ac37-68bc532b5403" // 900 cents
)

// Cards the payments service answers by number.
const (
	GoodCard     = "4242424242424242"
	DeclinedCard = "4000000000000002"
	FailingCard  = "4000000000000119"
)

// UserPassword is the password of every shop user a test signs up.
const UserPassword = "correct horse battery"

// Shop is a copy of the repository's shop workspace with an msctl binary
// to run it: see ShopManifest.
type Shop struct {
	CLI
	Port int // the gateway's
}

// MakeShop writes the shop's manifest, on a free gateway port and renamed to
// project unless it is empty, into a new directory that the caller removes.
// Not a t.TempDir: when the tests run as root, Postgres runs as user
// postgres and must reach .msctl/ below, and t.TempDir's parent is private;
// and a TestMain needs one before any test exists.
func MakeShop(bin, project string) (Shop, error) {
	dir, err := os.MkdirTemp("", "msctl-shop-")
	if err != nil {
		return Shop{}, err
	}
	s := Shop{CLI: CLI{Bin: bin, Dir: dir}}
	if err := os.Chmod(dir, 0o755); err != nil {
		return s, err
	}
	if s.Port, err = freeport.Get(); err != nil {
		return s, err
	}
	_, err = ShopManifest(dir, project, s.Port)
	return s, err
}

// NewShop is MakeShop for one test: the directory goes when the test ends.
func NewShop(t testing.TB, bin, project string) Shop {
	t.Helper()
	s, err := MakeShop(bin, project)
	if s.Dir != "" {
		t.Cleanup(func() { os.RemoveAll(s.Dir) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Gateway is the shop's public API for t.
func (s Shop) Gateway(t testing.TB) *API {
	return &API{T: t, Base: fmt.Sprintf("http://127.0.0.1:%d", s.Port)}
}

// Order is an order as its owner reads it.
type Order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// Product is a catalogue entry.
type Product struct {
	ID         string `json:"id"`
	SKU        string `json:"sku"`
	PriceCents int    `json:"price_cents"`
	Stock      int    `json:"stock"`
}

// SignIn signs up email with UserPassword and logs it in, returning the
// token. The signup must answer one of signupOK (201 Created when none is
// given: a test that reuses a user also allows 409 Conflict).
func (a *API) SignIn(email, name string, signupOK ...int) string {
	a.T.Helper()
	if len(signupOK) == 0 {
		signupOK = []int{http.StatusCreated}
	}
	r := a.Call("POST", "/api/v1/auth/signup", "", nil, map[string]string{"email": email, "password": UserPassword, "name": name})
	ok := false
	for _, code := range signupOK {
		ok = ok || r.Status == code
	}
	if !ok {
		a.T.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	token, code := a.Login(email)
	if code != http.StatusOK || token == "" {
		a.T.Fatalf("login: %d", code)
	}
	return token
}

// Login logs in a user made by SignIn and returns the token and the status.
func (a *API) Login(email string) (string, int) {
	a.T.Helper()
	var out struct {
		Token string `json:"token"`
	}
	code := a.Do("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": UserPassword}, &out)
	return out.Token, code
}

// Products lists the catalogue; it fails the test unless that answers 200
// with at least one product.
func (a *API) Products() []Product {
	a.T.Helper()
	var ps []Product
	if code := a.Do("GET", "/api/v1/products", "", nil, &ps); code != http.StatusOK || len(ps) == 0 {
		a.T.Fatalf("products: %d, %d products", code, len(ps))
	}
	return ps
}

// InStock is the first product with at least min in stock.
func (a *API) InStock(min int) Product {
	a.T.Helper()
	for _, p := range a.Products() {
		if p.Stock >= min {
			return p
		}
	}
	a.T.Fatalf("no product with %d in stock", min)
	return Product{}
}

// PlaceOrder orders qty of a product with card, sending hdr too (e.g. the
// client's traceparent), and returns the order's id; it fails the test
// unless the order is accepted.
func (a *API) PlaceOrder(token, productID, card string, qty int, hdr http.Header) string {
	a.T.Helper()
	var o Order
	body := map[string]any{"items": []map[string]any{{"product_id": productID, "quantity": qty}}, "card_number": card}
	if code := a.Call("POST", "/api/v1/orders", token, hdr, body).Decode(a.T, &o); code != http.StatusAccepted || o.ID == "" {
		a.T.Fatalf("place order: %d %+v", code, o)
	}
	return o.ID
}

// OrderReadTime is how long reading order id through the gateway takes,
// which a latency fault on gateway->orders lengthens; it fails t (the
// caller's test, which may be a subtest of a.T's) unless the read answers 200.
func (a *API) OrderReadTime(t testing.TB, token, id string) time.Duration {
	t.Helper()
	start := time.Now()
	if r := a.Call("GET", "/api/v1/orders/"+id, token, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("read order %s: %d %s", id, r.Status, r.Body)
	}
	return time.Since(start)
}

// Settle waits up to within for order id to leave PENDING and returns it.
func (a *API) Settle(token, id string, within time.Duration) Order {
	a.T.Helper()
	var o Order
	Eventually(a.T, within, "order "+id+" final", func() error {
		o = Order{}
		if code := a.Do("GET", "/api/v1/orders/"+id, token, nil, &o); code != http.StatusOK || o.Status == "PENDING" {
			return fmt.Errorf("%d %+v", code, o)
		}
		return nil
	})
	return o
}
