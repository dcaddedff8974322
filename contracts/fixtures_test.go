//go:build contracts

package contracts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/vault/vaulttest"
	ordersbroker "github.com/msctl/msctl/services/orders/adapters/broker"
	orderspg "github.com/msctl/msctl/services/orders/adapters/postgres"
	ordersapp "github.com/msctl/msctl/services/orders/app"
	ordersdomain "github.com/msctl/msctl/services/orders/domain"
	ordersmigrations "github.com/msctl/msctl/services/orders/migrations"
)

const (
	goodCard       = "4242424242424242"
	keyboardPrice  = int64(8900)
	outOfStockItem = "0d9a2d03-a28a-450a-8e07-fd1643d11f59" // seeded docking station, stock 0
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// outboxMessage returns the newest message for subject about orderID in a
// service's outbox, exactly as the relay would publish it.
func outboxMessage(ctx context.Context, db *pgxpool.Pool, subject, orderID string) ([]byte, error) {
	var raw []byte
	err := db.QueryRow(ctx, `SELECT payload FROM outbox
		WHERE subject = $1 AND convert_from(payload, 'UTF8')::jsonb #>> '{data,order_id}' = $2
		ORDER BY seq DESC LIMIT 1`, subject, orderID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("no %s message for order %s in the outbox", subject, orderID)
	}
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return raw, nil
}

// delivery decodes a message as the bus does before a handler sees it.
func delivery(raw []byte) (bus.Message, error) {
	env, payload, err := events.Parse(raw)
	if err != nil {
		return bus.Message{}, err
	}
	return bus.Message{Envelope: env, Payload: payload, Subject: env.Subject, Delivery: 1}, nil
}

// handled is a message consumer that delivers the contents to h, as the bus
// would, and then runs check on the handler's effects.
func handled(h bus.Handler, check func(ctx context.Context) error) func(context.Context, []byte) error {
	return func(ctx context.Context, raw []byte) error {
		m, err := delivery(raw)
		if err != nil {
			return err
		}
		if err := h(ctx, m); err != nil {
			return err
		}
		return check(ctx)
	}
}

// repliedWith checks that a handler queued reply about the example order in
// db's outbox.
func repliedWith(db *pgxpool.Pool, reply string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := outboxMessage(ctx, db, reply, exampleOrderID)
		return err
	}
}

// ordersSaga is the real orders app on its own database, with a saga that
// gives up after one attempt so a test can reach the refund step by sweeping.
type ordersSaga struct {
	db  *pgxpool.Pool
	app *ordersapp.App
}

func newOrdersSaga(t *testing.T) *ordersSaga {
	db := openDB(t, "orders", ordersmigrations.FS)
	cfg := ordersapp.SagaConfig{StepTimeout: time.Millisecond, MaxAttempts: 1}
	return &ordersSaga{db: db, app: ordersapp.New(db, orderspg.New(db), cfg, ordersapp.Keys{Cards: vaulttest.New(t), RequestHash: []byte("test")}, quietLog())}
}

// place places an order of one keyboard (product) for userID.
func (o *ordersSaga) place(ctx context.Context, userID, product string) (ordersdomain.Order, error) {
	ord, _, err := o.app.Place(ctx, userID, "", []ordersdomain.Item{{ProductID: product, Quantity: 1}}, goodCard)
	return ord, err
}

// reply hands the saga a participant's reply, as its consumer does.
func (o *ordersSaga) reply(ctx context.Context, payload any) error {
	return pgx.BeginFunc(ctx, o.db, func(tx pgx.Tx) error { return o.app.HandleReply(ctx, tx, payload) })
}

// handle runs the saga's real bus handler (inbox included) on a raw message.
func (o *ordersSaga) handle(ctx context.Context, raw []byte) error {
	m, err := delivery(raw)
	if err != nil {
		return err
	}
	return ordersbroker.SagaHandler(o.db, o.app)(ctx, m)
}

// Saga positions a test can put an order in.
type sagaStep int

const (
	awaitingStock sagaStep = iota
	awaitingCharge
	awaitingRelease
	awaitingRefund
	confirmed
	cancelled
)

// orderAt places an order and walks its saga to step with the replies the
// participants would send.
func (o *ordersSaga) orderAt(ctx context.Context, userID string, step sagaStep) (ordersdomain.Order, error) {
	product := exampleProduct
	if step == cancelled {
		product = outOfStockItem
	}
	ord, err := o.place(ctx, userID, product)
	if err != nil {
		return ord, err
	}
	reserved := &events.StockReserved{OrderID: ord.ID, Items: []events.PricedItem{{ProductID: product, Quantity: 1, UnitPriceCents: keyboardPrice}}}
	var steps []any
	switch step {
	case awaitingCharge, awaitingRefund:
		steps = []any{reserved}
	case awaitingRelease:
		steps = []any{reserved, &events.PaymentDeclined{OrderID: ord.ID, Code: events.DeclineCardDeclined, Reason: "card declined"}}
	case confirmed:
		steps = []any{reserved, &events.PaymentCharged{OrderID: ord.ID, AmountCents: keyboardPrice}}
	case cancelled:
		steps = []any{&events.StockRejected{OrderID: ord.ID, Reason: "insufficient stock for " + product}}
	}
	for _, s := range steps {
		if err := o.reply(ctx, s); err != nil {
			return ord, err
		}
	}
	if step == awaitingRefund {
		// The charge gets no reply: after the step timeout the sweeper gives up and refunds.
		time.Sleep(5 * time.Millisecond)
		if _, err := o.app.Sweep(ctx); err != nil {
			return ord, err
		}
	}
	return ord, nil
}
