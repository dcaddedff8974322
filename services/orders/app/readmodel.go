package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/orders/domain"
)

// ReadModelSubjects are the events the read model is built from.
var ReadModelSubjects = []string{"orders.evt.>"}

// maxList bounds the order list.
const maxList = 200

// Project applies one order event to the read model. The projection is
// idempotent and order-insensitive: created only inserts, and an outcome
// only overwrites a PENDING row, so duplicates and reordering converge.
func (a *App) Project(ctx context.Context, tx pgx.Tx, env events.Envelope, payload any) error {
	return a.ProjectAll(ctx, tx, []bus.Message{{Envelope: env, Payload: payload}})
}

// ProjectAll applies a batch of order events to the read model in tx, as
// one round trip to the database.
func (a *App) ProjectAll(ctx context.Context, tx pgx.Tx, ms []bus.Message) error {
	var b pgx.Batch
	for _, m := range ms {
		v, ok := viewOf(m.Payload)
		if !ok {
			return bus.Permanent(fmt.Errorf("read model does not handle %T", m.Payload))
		}
		v.UpdatedAt = m.Envelope.OccurredAt.UTC()
		if err := a.repo.QueueUpsertView(&b, v); err != nil {
			return err
		}
	}
	return sendBatch(ctx, tx, &b)
}

func viewOf(payload any) (domain.View, bool) {
	switch e := payload.(type) {
	case *events.OrderCreatedV1:
		items := make([]domain.Item, len(e.Items))
		for i, it := range e.Items {
			items[i] = domain.Item{ProductID: it.ProductID, Quantity: it.Quantity}
		}
		return domain.View{OrderID: e.OrderID, UserID: e.UserID, Status: domain.StatusPending, Items: items, CreatedAt: e.CreatedAt}, true
	case *events.OrderConfirmedV1:
		return domain.View{OrderID: e.OrderID, UserID: e.UserID, Status: domain.StatusConfirmed, Items: viewItems(e.Items), TotalCents: e.TotalCents, CreatedAt: e.CreatedAt}, true
	case *events.OrderCancelledV1:
		return domain.View{OrderID: e.OrderID, UserID: e.UserID, Status: domain.StatusCancelled, Reason: e.Reason, Items: viewItems(e.Items), TotalCents: e.TotalCents, CreatedAt: e.CreatedAt}, true
	}
	return domain.View{}, false
}

func viewItems(in []events.PricedItem) []domain.Item {
	out := make([]domain.Item, len(in))
	for i, it := range in {
		p := it.UnitPriceCents
		out[i] = domain.Item{ProductID: it.ProductID, Quantity: it.Quantity, UnitPriceCents: &p}
	}
	return out
}

// Orders lists the caller's orders, newest first, from the read model.
func (a *App) Orders(ctx context.Context, userID string) ([]domain.View, error) {
	return a.repo.Views(ctx, userID, maxList)
}

// Replayer reads a stream from its start.
type Replayer interface {
	// FullHistory is nil while stream holds every message ever stored in it.
	FullHistory(ctx context.Context, stream string) error
	Replay(ctx context.Context, stream string, subjects []string, fn func(bus.Message) error) (int, error)
}

var _ Replayer = (*bus.Bus)(nil)

// RebuildReadModel throws the read model away and rebuilds it by replaying
// the order events, in one transaction: readers see the old model until the
// new one is complete. It returns the number of events replayed. It
// refuses, with an errs.Conflict naming why, when the stream lost events
// (its limits removed the oldest, or it was purged): the rebuilt model
// would silently lack those orders, while the current one still has them.
func (a *App) RebuildReadModel(ctx context.Context, r Replayer) (int, error) {
	if err := r.FullHistory(ctx, events.StreamOrderEvents); err != nil {
		var lost *bus.HistoryLostError
		if errors.As(err, &lost) {
			return 0, errs.Conflict("history_lost", "refusing to rebuild the read model: "+lost.Error()+"; rebuild would lose orders").Wrap(err)
		}
		return 0, fmt.Errorf("rebuild read model: %w", err)
	}
	n := 0
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		if err := a.repo.ClearViews(ctx, tx); err != nil {
			return err
		}
		var err error
		n, err = r.Replay(ctx, events.StreamOrderEvents, ReadModelSubjects, func(m bus.Message) error {
			return a.Project(ctx, tx, m.Envelope, m.Payload)
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild read model: %w", err)
	}
	return n, nil
}
