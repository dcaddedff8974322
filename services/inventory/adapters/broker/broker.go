// Package broker connects inventory to the bus: it consumes the reserve and
// release commands of the orders saga and answers through the outbox, in
// one transaction with the inbox record and the stock change.
package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/inventory/app"
	"github.com/msctl/msctl/services/inventory/domain"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/kit/outbox"
)

// Consumer is the durable consumer of inventory commands.
var Consumer = bus.ConsumerConfig{
	Stream:   events.StreamInventoryCommands,
	Durable:  "inventory",
	Subjects: []string{"inventory.cmd.>"},
}

// Stock is what the consumer needs from the inventory app layer.
type Stock interface {
	Product(ctx context.Context, id string) (domain.Product, error)
	ReserveTx(ctx context.Context, tx pgx.Tx, orderID string, items []domain.Item) error
	ReleaseTx(ctx context.Context, tx pgx.Tx, orderID string) error
}

var _ Stock = (*app.App)(nil)

// Handler handles one inventory command.
func Handler(db *pgxpool.Pool, s Stock) bus.Handler {
	h := &handler{db: db, stock: s}
	return h.handle
}

type handler struct {
	db    *pgxpool.Pool
	stock Stock
}

func (h *handler) handle(ctx context.Context, m bus.Message) error {
	// Prices are read before the transaction opens: a lookup from inside it
	// would hold one pooled connection while waiting for another.
	var prices map[string]int64
	if cmd, ok := m.Payload.(*events.ReserveStock); ok {
		var err error
		if prices, err = h.prices(ctx, cmd.Items); err != nil {
			return err
		}
	}
	err := pgx.BeginFunc(ctx, h.db, func(tx pgx.Tx) error {
		fresh, err := inbox.Claim(ctx, tx, Consumer.Durable, m.Envelope.ID)
		if err != nil || !fresh {
			return err
		}
		switch cmd := m.Payload.(type) {
		case *events.ReserveStock:
			return h.reserve(ctx, tx, *cmd, prices)
		case *events.ReleaseStock:
			if err := h.stock.ReleaseTx(ctx, tx, cmd.OrderID); err != nil {
				return err
			}
			_, err := outbox.Add(ctx, tx, events.InventoryReleased, events.StockReleased{OrderID: cmd.OrderID})
			return err
		}
		return bus.Permanent(fmt.Errorf("inventory does not handle %s", m.Subject))
	})
	if err == nil {
		outbox.Wake()
	}
	return err
}

// prices looks up the unit price of every known product of items; unknown
// ones are left out (the reservation rejects them).
func (h *handler) prices(ctx context.Context, items []events.Item) (map[string]int64, error) {
	out := make(map[string]int64, len(items))
	for _, it := range items {
		if _, seen := out[it.ProductID]; seen {
			continue
		}
		p, err := h.stock.Product(ctx, it.ProductID)
		if errors.Is(err, domain.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[it.ProductID] = p.PriceCents
	}
	return out, nil
}

// reserve reserves all items or none. A refusal is an answer, not a
// failure: the stock change is undone through a savepoint and
// StockRejected is sent in the same transaction as the inbox record.
func (h *handler) reserve(ctx context.Context, tx pgx.Tx, cmd events.ReserveStock, prices map[string]int64) error {
	items := make([]domain.Item, len(cmd.Items))
	for i, it := range cmd.Items {
		items[i] = domain.Item{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err = h.stock.ReserveTx(ctx, sp, cmd.OrderID, items)
	var verr *domain.ValidationError
	if errors.Is(err, domain.ErrInsufficientStock) || errors.Is(err, domain.ErrUnknownProduct) ||
		errors.Is(err, domain.ErrReleased) || errors.As(err, &verr) {
		if rerr := sp.Rollback(ctx); rerr != nil {
			return fmt.Errorf("rollback to savepoint: %w", rerr)
		}
		_, aerr := outbox.Add(ctx, tx, events.InventoryRejected, events.StockRejected{OrderID: cmd.OrderID, Reason: err.Error()})
		return aerr
	}
	if err != nil {
		return err
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	priced := make([]events.PricedItem, len(cmd.Items))
	for i, it := range cmd.Items {
		priced[i] = events.PricedItem{ProductID: it.ProductID, Quantity: it.Quantity, UnitPriceCents: prices[it.ProductID]}
	}
	_, err = outbox.Add(ctx, tx, events.InventoryReserved, events.StockReserved{OrderID: cmd.OrderID, Items: priced})
	return err
}
