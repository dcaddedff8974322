package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/inventory/adapters/postgres"
	"github.com/msctl/msctl/services/inventory/app"
	"github.com/msctl/msctl/services/inventory/domain"
	"github.com/msctl/msctl/services/inventory/migrations"
	"github.com/msctl/msctl/services/kit/pg"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Seeded products (see migrations/00001_init.sql).
const (
	keyboard = "bf16a7f8-dad1-48c7-9049-62fbe5440f29"
	mouse    = "fe9cc123-161a-45cd-87e1-7236b398020b"
)

func setup(t *testing.T, name string) (*app.App, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Enough connections that the reservations really run at once.
	db, err := pg.Open(ctx, testenv.Database(t, name)+"&pool_max_conns=25", migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return app.New(db, postgres.New(db)), db
}

func setStock(t *testing.T, db *pgxpool.Pool, id string, n int) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `UPDATE products SET stock = $2 WHERE id = $1`, id, n); err != nil {
		t.Fatal(err)
	}
}

func stock(t *testing.T, a *app.App, id string) int {
	t.Helper()
	p, err := a.Product(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p.Stock
}

func TestNoOversellUnderConcurrency(t *testing.T) {
	a, db := setup(t, "inventory_race")
	setStock(t, db, keyboard, 20)

	const n = 50
	var ok, short atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := a.Reserve(ctx, fmt.Sprintf("race-%d", i), []domain.Item{{ProductID: keyboard, Quantity: 1}})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, app.ErrInsufficientStock):
				short.Add(1)
			default:
				t.Errorf("reserve %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 20 || short.Load() != n-20 {
		t.Fatalf("%d reservations succeeded and %d were short, want 20 and %d", ok.Load(), short.Load(), n-20)
	}
	if got := stock(t, a, keyboard); got != 0 {
		t.Fatalf("stock ends at %d, want 0", got)
	}
}

func TestReserveRelease(t *testing.T) {
	a, db := setup(t, "inventory_reserve")
	ctx := context.Background()
	setStock(t, db, keyboard, 10)
	setStock(t, db, mouse, 3)
	both := []domain.Item{{ProductID: keyboard, Quantity: 2}, {ProductID: mouse, Quantity: 1}}

	steps := []struct {
		name             string
		do               func() error
		wantErr          error
		keyboard, mouse2 int
	}{
		{"reserve", func() error { return a.Reserve(ctx, "o1", both) }, nil, 8, 2},
		{"reserve again is a no-op", func() error { return a.Reserve(ctx, "o1", both) }, nil, 8, 2},
		{"all or nothing", func() error {
			return a.Reserve(ctx, "o2", []domain.Item{{ProductID: keyboard, Quantity: 1}, {ProductID: mouse, Quantity: 5}})
		}, app.ErrInsufficientStock, 8, 2},
		{"unknown product", func() error {
			return a.Reserve(ctx, "o3", []domain.Item{{ProductID: keyboard, Quantity: 1}, {ProductID: "nope", Quantity: 1}})
		}, app.ErrUnknownProduct, 8, 2},
		{"failed order can reserve later", func() error {
			return a.Reserve(ctx, "o2", []domain.Item{{ProductID: mouse, Quantity: 2}})
		}, nil, 8, 0},
		{"release", func() error { return a.Release(ctx, "o1") }, nil, 10, 1},
		{"release again is a no-op", func() error { return a.Release(ctx, "o1") }, nil, 10, 1},
		{"reserve after release is refused", func() error { return a.Reserve(ctx, "o1", both) }, app.ErrReleased, 10, 1},
		{"release of unknown order is a no-op", func() error { return a.Release(ctx, "never-reserved") }, nil, 10, 1},
		{"late reserve after that release is refused", func() error {
			return a.Reserve(ctx, "never-reserved", both)
		}, app.ErrReleased, 10, 1},
	}
	for _, s := range steps {
		err := s.do()
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		if k, m := stock(t, a, keyboard), stock(t, a, mouse); k != s.keyboard || m != s.mouse2 {
			t.Fatalf("%s: stock keyboard=%d mouse=%d, want %d and %d", s.name, k, m, s.keyboard, s.mouse2)
		}
	}
}

func TestReserveTxLeavesCallerTxUsable(t *testing.T) {
	a, db := setup(t, "inventory_tx")
	ctx := context.Background()
	setStock(t, db, mouse, 1)
	if _, err := db.Exec(ctx, `CREATE TABLE rejections (order_id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	err := pg.InTx(ctx, db, func(tx pgx.Tx) error {
		err := a.ReserveTx(ctx, tx, "o-tx", []domain.Item{{ProductID: keyboard, Quantity: 1}, {ProductID: mouse, Quantity: 2}})
		if !errors.Is(err, app.ErrInsufficientStock) {
			return fmt.Errorf("ReserveTx = %v, want insufficient stock", err)
		}
		// The consumer records the outcome in the same transaction.
		_, err = tx.Exec(ctx, `INSERT INTO rejections VALUES ('o-tx')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM rejections`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rejections = %d, %v", n, err)
	}
	if k := stock(t, a, keyboard); k != 50 {
		t.Fatalf("keyboard stock = %d after a rejected reservation, want the seeded 50", k)
	}
}
