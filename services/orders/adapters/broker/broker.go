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

// SagaConsumers receive the replies of inventory and payments (a consumer
// reads one stream).
var SagaConsumers = []bus.ConsumerConfig{
	{Stream: events.StreamInventoryEvents, Durable: "orders-saga-inventory", Subjects: []string{"inventory.evt.>"}},
	{Stream: events.StreamPaymentsEvents, Durable: "orders-saga-payments", Subjects: []string{"payments.evt.>"}},
}

// sagaInbox names the saga's inbox records, whichever consumer handled them.
const sagaInbox = "orders-saga"

// ReadModelConsumer receives the order events that feed the read model.
var ReadModelConsumer = bus.ConsumerConfig{
	Stream:   events.StreamOrderEvents,
	Durable:  "orders-read-model",
	Subjects: app.ReadModelSubjects,
}

// SagaHandler advances the saga on one reply, once.
func SagaHandler(db *pgxpool.Pool, a *app.App) bus.Handler {
	return inbox.Handler(db, sagaInbox, func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return a.HandleReply(ctx, tx, m.Payload)
	})
}

// ReadModelHandler projects one order event, once.
func ReadModelHandler(db *pgxpool.Pool, a *app.App) bus.Handler {
	return inbox.Handler(db, ReadModelConsumer.Durable, func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return a.Project(ctx, tx, m.Envelope, m.Payload)
	})
}
