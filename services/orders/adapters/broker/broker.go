// Package broker connects orders to the bus: the saga consumes the
// participants' replies, and the read model consumes the order events.
package broker

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/orders/app"
)

// SagaConsumer receives the replies of inventory and payments.
var SagaConsumer = bus.ConsumerConfig{
	Stream:   events.StreamEvents,
	Durable:  "orders-saga",
	Subjects: []string{"inventory.evt.>", "payments.evt.>"},
}

// ReadModelConsumer receives the order events that feed the read model.
var ReadModelConsumer = bus.ConsumerConfig{
	Stream:   events.StreamEvents,
	Durable:  "orders-read-model",
	Subjects: app.ReadModelSubjects,
}

// SagaHandler advances the saga on one reply, once.
func SagaHandler(db *pgxpool.Pool, a *app.App) bus.Handler {
	return inbox.Handler(db, SagaConsumer.Durable, func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return a.HandleReply(ctx, tx, m.Payload)
	})
}

// ReadModelHandler projects one order event, once.
func ReadModelHandler(db *pgxpool.Pool, a *app.App) bus.Handler {
	return inbox.Handler(db, ReadModelConsumer.Durable, func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return a.Project(ctx, tx, m.Envelope, m.Payload)
	})
}
