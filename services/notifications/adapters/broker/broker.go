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

// Consumer is the durable consumer of the order outcomes.
var Consumer = bus.ConsumerConfig{
	Stream:   events.StreamOrderEvents,
	Durable:  "notifications",
	Subjects: []string{events.OrderConfirmed, events.OrderCancelled},
}

// Handler records the notification of one order event, once.
func Handler(db *pgxpool.Pool, a *app.App) bus.Handler {
	return inbox.Handler(db, Consumer.Durable, func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return a.Record(ctx, tx, m.Payload)
	})
}
