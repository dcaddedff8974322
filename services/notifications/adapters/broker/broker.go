// Package broker feeds notifications from the order events.
package broker

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/notifications/app"
)

// Consumer is the durable consumer of the order outcomes. Each batch of
// events is recorded in one transaction.
var Consumer = bus.ConsumerConfig{
	Stream:      events.StreamOrderEvents,
	Durable:     "notifications",
	Subjects:    []string{events.OrderConfirmed, events.OrderCancelled},
	Concurrency: 4,
	Batch:       64,
}

// Handler records the notification of one order event, once.
func Handler(db *pgxpool.Pool, a *app.App) bus.Handler {
	return inbox.Handler(db, Consumer.Durable, record(a))
}

// BatchHandler records the notifications of a batch of order events, each once.
func BatchHandler(db *pgxpool.Pool, a *app.App) bus.BatchHandler {
	return inbox.BatchHandler(db, Consumer.Durable, record(a))
}

func record(a *app.App) inbox.TxHandler {
	return func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return a.Record(ctx, tx, m.Payload)
	}
}
