// Package broker connects inventory to the bus: it consumes the reserve and
// release commands of the orders saga, in one transaction with the inbox
// record, in which the app changes the stock and queues its answer for the
// outbox.
package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/inventory/app"
	"github.com/msctl/msctl/services/inventory/domain"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/kit/outbox"
)

// Consumer is the durable consumer of inventory commands. Its many handler
// slots feed batches (see Handler), so they are cheap waiting goroutines.
var Consumer = bus.ConsumerConfig{
	Stream:      events.StreamInventoryCommands,
	Durable:     "inventory",
	Subjects:    []string{"inventory.cmd.>"},
	Concurrency: 64,
}

// maxBatch bounds the commands handled in one transaction.
const maxBatch = 64

// Stock is what the consumer needs from the inventory app layer.
type Stock interface {
	Product(ctx context.Context, id string) (domain.Product, error)
	ReserveCommand(ctx context.Context, tx pgx.Tx, replies *pgx.Batch, cmd events.ReserveStock, prices map[string]int64) error
	ReleaseCommand(ctx context.Context, tx pgx.Tx, replies *pgx.Batch, cmd events.ReleaseStock) error
}

var _ Stock = (*app.App)(nil)

// Handler handles inventory commands. Commands that arrive together are
// handled in one transaction (one commit for the batch). A batch holds the
// product rows it updates until it commits, so two batches must not lock
// them in opposite orders: reservations are batched only with others of the
// same set of products (every batch then locks its products in ascending id
// order, as ReserveTx does), and a release, whose products are known only
// from its reservation, only with copies of itself. If a batch fails, its
// commands are handled again one per transaction so that only the one at
// fault fails.
func Handler(db *pgxpool.Pool, s Stock) bus.Handler {
	h := &handler{db: db, stock: s}
	return bus.Group(h.handleBatch, maxBatch, batchKey)
}

// batchKey says which commands may share a transaction.
func batchKey(m bus.Message) string {
	switch cmd := m.Payload.(type) {
	case *events.ReserveStock:
		ids := make([]string, len(cmd.Items))
		for i, it := range cmd.Items {
			ids[i] = it.ProductID
		}
		return "reserve:" + strings.Join(slices.Compact(slices.Sorted(slices.Values(ids))), ",")
	case *events.ReleaseStock:
		return "release:" + cmd.OrderID
	}
	return m.Subject
}

type handler struct {
	db    *pgxpool.Pool
	stock Stock
}

func (h *handler) handleBatch(ctx context.Context, ms []bus.Message) []error {
	// Prices are read before the transaction opens: a lookup from inside it
	// would hold one pooled connection while waiting for another.
	var items []events.Item
	for _, m := range ms {
		if cmd, ok := m.Payload.(*events.ReserveStock); ok {
			items = append(items, cmd.Items...)
		}
	}
	prices, err := h.prices(ctx, items)
	if err != nil {
		errs := make([]error, len(ms))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	batch := inbox.Batched(h.db, Consumer.Durable, func(ctx context.Context, tx pgx.Tx, fresh []bus.Message) error {
		return h.apply(ctx, tx, fresh, prices)
	}, func(ctx context.Context, m bus.Message) error { return h.handle(ctx, m, prices) })
	return batch(ctx, ms)
}

// handle handles one command in its own transaction.
func (h *handler) handle(ctx context.Context, m bus.Message, prices map[string]int64) error {
	err := pgx.BeginFunc(ctx, h.db, func(tx pgx.Tx) error {
		fresh, err := inbox.Claim(ctx, tx, Consumer.Durable, m.Envelope.ID)
		if err != nil || !fresh {
			return err
		}
		return h.apply(ctx, tx, []bus.Message{m}, prices)
	})
	if err == nil {
		outbox.Wake()
	}
	return err
}

// apply carries out claimed commands in tx, in order; the replies the app
// queues for the outbox are written together at the end, in one round trip.
func (h *handler) apply(ctx context.Context, tx pgx.Tx, ms []bus.Message, prices map[string]int64) error {
	var replies pgx.Batch
	for _, m := range ms {
		mctx := m.Context(ctx)
		var err error
		switch cmd := m.Payload.(type) {
		case *events.ReserveStock:
			err = h.stock.ReserveCommand(mctx, tx, &replies, *cmd, prices)
		case *events.ReleaseStock:
			err = h.stock.ReleaseCommand(mctx, tx, &replies, *cmd)
		default:
			err = bus.Permanent(fmt.Errorf("inventory does not handle %s", m.Subject))
		}
		if err != nil {
			return err
		}
	}
	if err := tx.SendBatch(ctx, &replies).Close(); err != nil {
		return fmt.Errorf("add replies to the outbox: %w", err)
	}
	return nil
}

// prices looks up the unit price of every known product of items; unknown
// ones are left out (the reservation rejects them).
func (h *handler) prices(ctx context.Context, items []events.Item) (map[string]int64, error) {
	out := make(map[string]int64, len(items))
	unknown := map[string]bool{}
	for _, it := range items {
		if _, seen := out[it.ProductID]; seen || unknown[it.ProductID] {
			continue
		}
		p, err := h.stock.Product(ctx, it.ProductID)
		if errors.Is(err, domain.ErrNotFound) {
			unknown[it.ProductID] = true
			continue
		}
		if err != nil {
			return nil, err
		}
		out[it.ProductID] = p.PriceCents
	}
	return out, nil
}
