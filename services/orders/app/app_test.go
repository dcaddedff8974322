package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/bus/bustest"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/pg"
	"github.com/msctl/msctl/services/kit/vault"
	"github.com/msctl/msctl/services/kit/vault/vaulttest"
	"github.com/msctl/msctl/services/orders/adapters/postgres"
	"github.com/msctl/msctl/services/orders/app"
	"github.com/msctl/msctl/services/orders/domain"
	"github.com/msctl/msctl/services/orders/migrations"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func keys(t *testing.T) app.Keys {
	return app.Keys{Cards: vaulttest.New(t), RequestHash: []byte("orders-own-secret")}
}

// An accepted order keeps its card only sealed, bound to the order, and its
// request hash is salted: neither the saga row nor the orders row holds the
// number or a plain digest of the request.
func TestPlaceStoresNoCardNumber(t *testing.T) {
	db := newDB(t)
	a := app.New(db, postgres.New(db), app.SagaConfig{StepTimeout: time.Minute, MaxAttempts: 1}, keys(t), quiet())
	const card = "4242424242424242"
	items := []domain.Item{{ProductID: "p1", Quantity: 2}}
	o, _, err := a.Place(context.Background(), "u1", "k1", items, card)
	if err != nil {
		t.Fatal(err)
	}
	var sealed, hash string
	if err := db.QueryRow(context.Background(), `SELECT s.card, o.request_hash FROM sagas s JOIN orders o ON o.id = s.order_id WHERE s.order_id = $1`, o.ID).Scan(&sealed, &hash); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, card) || !vault.Sealed(sealed) {
		t.Errorf("saga card = %q, want it sealed", sealed)
	}
	if got, err := vaulttest.New(t).Open(sealed, o.ID); err != nil || got != card {
		t.Errorf("sealed card opens to %q, %v", got, err)
	}
	raw, _ := json.Marshal(struct {
		Items []domain.Item
		Card  string
	}{items, card})
	plain := sha256.Sum256(raw)
	if hash == hex.EncodeToString(plain[:]) {
		t.Error("request hash is the plain SHA-256 of the request: not salted")
	}
	// The salted hash still tells a retry from a reused key.
	if _, created, err := a.Place(context.Background(), "u1", "k1", items, card); err != nil || created {
		t.Errorf("retry: created %v, err %v", created, err)
	}
	if _, _, err := a.Place(context.Background(), "u1", "k1", items, "4000000000000002"); !errors.Is(err, app.ErrIdempotencyMismatch) {
		t.Errorf("reused key with another card: err = %v, want mismatch", err)
	}
}

func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pg.Open(ctx, testenv.Database(t, "orders"), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func sagaStep(t *testing.T, db *pgxpool.Pool, orderID string) (domain.Step, int) {
	t.Helper()
	var step domain.Step
	var attempts int
	if err := db.QueryRow(context.Background(), `SELECT step, attempts FROM sagas WHERE order_id = $1`, orderID).Scan(&step, &attempts); err != nil {
		t.Fatal(err)
	}
	return step, attempts
}

// While orders' own dependencies are down no reply can arrive, so the
// sweeper must neither re-send nor give up: the step's clock stops, and
// runs a full StepTimeout again once they are back.
func TestSweeperDoesNotCountTimeWhileDependenciesAreDown(t *testing.T) {
	db := newDB(t)
	var down atomic.Bool
	down.Store(true)
	const stepTimeout = 400 * time.Millisecond
	a := app.New(db, postgres.New(db), app.SagaConfig{StepTimeout: stepTimeout, MaxAttempts: 1, Healthy: func(context.Context) error {
		if down.Load() {
			return errors.New("nats: not connected")
		}
		return nil
	}}, keys(t), quiet())
	o, _, err := a.Place(context.Background(), "u1", "", []domain.Item{{ProductID: "p1", Quantity: 1}}, "4242424242424242")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.RunSweeper(ctx) }()
	defer func() { cancel(); <-done }()

	time.Sleep(5 * stepTimeout)
	if step, attempts := sagaStep(t, db, o.ID); step != domain.StepReserve || attempts != 1 {
		t.Fatalf("during the outage the saga moved to %s (attempt %d)", step, attempts)
	}
	down.Store(false)
	// MaxAttempts 1: the first timeout after the outage gives the reservation up.
	testenv.Until(t, 10*time.Second, "step timed out once healthy", func() bool {
		step, _ := sagaStep(t, db, o.ID)
		return step == domain.StepRelease
	})
}

// A rebuild from a stream whose oldest events were removed by its limits
// would drop those orders from the list: it is refused, naming why, and the
// current read model stays.
func TestRebuildRefusesAStreamThatLostEvents(t *testing.T) {
	db := newDB(t)
	ns := testenv.NATS(t)
	b := bustest.Dial(t, ns.URL())
	ctx := context.Background()
	bustest.LimitMsgs(t, b, events.StreamOrderEvents, 3)
	a := app.New(db, postgres.New(db), app.SagaConfig{StepTimeout: time.Minute, MaxAttempts: 1}, keys(t), quiet())
	publish := func(id string) {
		env, err := events.New(events.OrderCreated, events.OrderCreatedV1{OrderID: id, UserID: "u1", Items: []events.Item{{ProductID: "p", Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, env, raw); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"o1", "o2"} {
		publish(id)
	}
	if n, err := a.RebuildReadModel(ctx, b); err != nil || n != 2 {
		t.Fatalf("rebuild of a complete stream: %d events, %v", n, err)
	}
	for _, id := range []string{"o3", "o4", "o5"} {
		publish(id)
	}
	_, err := a.RebuildReadModel(ctx, b)
	var e *errs.Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict {
		t.Fatalf("got %v, want a 409", err)
	}
	for _, want := range []string{"ORDERS_EVT starts at sequence 3", "first 2", "would lose orders"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q does not say %q", e.Message, want)
		}
	}
	views, err := a.Orders(ctx, "u1")
	if err != nil || len(views) != 2 {
		t.Fatalf("read model after the refusal: %d orders, %v; want the 2 it had", len(views), err)
	}
}
