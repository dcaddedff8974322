package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/inventory/adapters/postgres"
	"github.com/msctl/msctl/services/inventory/api"
	"github.com/msctl/msctl/services/inventory/app"
	"github.com/msctl/msctl/services/inventory/migrations"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/kit/httpx/httpxtest"
	"github.com/msctl/msctl/services/kit/pg"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const mouse = "fe9cc123-161a-45cd-87e1-7236b398020b" // seeded with stock 120

func start(t *testing.T) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pg.Open(ctx, testenv.Database(t, "inventory_api"), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	srv := httpx.New(httpx.Options{Service: "inventory"})
	api.Register(srv.Mux, app.New(db, postgres.New(db)))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type product struct {
	ID         string `json:"id"`
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int    `json:"stock"`
}

type errBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

func TestCatalogue(t *testing.T) {
	ts := start(t)
	var ps []product
	if code := httpxtest.Call(t, ts, "GET", "/api/v1/products", "", &ps); code != http.StatusOK {
		t.Fatalf("products = %d", code)
	}
	if len(ps) < 5 {
		t.Fatalf("%d products seeded, want at least 5", len(ps))
	}
	if !sort.SliceIsSorted(ps, func(i, j int) bool { return ps[i].SKU < ps[j].SKU }) {
		t.Fatalf("products not sorted by sku: %+v", ps)
	}
	for _, p := range ps {
		if p.ID == "" || p.SKU == "" || p.Name == "" || p.PriceCents <= 0 || p.Stock < 0 {
			t.Fatalf("incomplete product %+v", p)
		}
	}
	var one product
	if code := httpxtest.Call(t, ts, "GET", "/internal/products/"+ps[0].ID, "", &one); code != http.StatusOK || one != ps[0] {
		t.Fatalf("product = %d %+v, want %+v", code, one, ps[0])
	}
	var e errBody
	if code := httpxtest.Call(t, ts, "GET", "/internal/products/nope", "", &e); code != http.StatusNotFound || e.Error.Code != "product_not_found" {
		t.Fatalf("unknown product = %d %+v", code, e)
	}
}

func TestReservations(t *testing.T) {
	ts := start(t)
	mouseStock := func() int {
		var p product
		if code := httpxtest.Call(t, ts, "GET", "/internal/products/"+mouse, "", &p); code != http.StatusOK {
			t.Fatalf("product = %d", code)
		}
		return p.Stock
	}
	reserve := `{"order_id":"o-1","items":[{"product_id":"` + mouse + `","quantity":20}]}`
	steps := []struct {
		name, method, path, body string
		wantCode                 int
		wantErr                  string
		wantStock                int
	}{
		{"reserve", "POST", "/internal/reservations", reserve, http.StatusOK, "", 100},
		{"reserve twice", "POST", "/internal/reservations", reserve, http.StatusOK, "", 100},
		{"too much", "POST", "/internal/reservations", `{"order_id":"o-2","items":[{"product_id":"` + mouse + `","quantity":101}]}`, http.StatusConflict, "insufficient_stock", 100},
		{"unknown product", "POST", "/internal/reservations", `{"order_id":"o-3","items":[{"product_id":"nope","quantity":1}]}`, http.StatusBadRequest, "unknown_product", 100},
		{"no items", "POST", "/internal/reservations", `{"order_id":"o-4","items":[]}`, http.StatusBadRequest, "invalid_request", 100},
		{"no order id", "POST", "/internal/reservations", `{"items":[{"product_id":"` + mouse + `","quantity":1}]}`, http.StatusBadRequest, "invalid_request", 100},
		{"bad json", "POST", "/internal/reservations", `{"order_id":`, http.StatusBadRequest, "invalid_json", 100},
		{"release", "DELETE", "/internal/reservations/o-1", "", http.StatusNoContent, "", 120},
		{"release twice", "DELETE", "/internal/reservations/o-1", "", http.StatusNoContent, "", 120},
		{"release unknown", "DELETE", "/internal/reservations/o-unknown", "", http.StatusNoContent, "", 120},
		{"reserve released order", "POST", "/internal/reservations", reserve, http.StatusConflict, "reservation_released", 120},
	}
	for _, s := range steps {
		var e errBody
		var out any
		if s.wantErr != "" {
			out = &e
		}
		if code := httpxtest.Call(t, ts, s.method, s.path, s.body, out); code != s.wantCode || e.Error.Code != s.wantErr {
			t.Fatalf("%s: %d %+v, want %d %q", s.name, code, e, s.wantCode, s.wantErr)
		}
		if got := mouseStock(); got != s.wantStock {
			t.Fatalf("%s: stock %d, want %d", s.name, got, s.wantStock)
		}
	}
}
