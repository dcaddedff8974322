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
// reads one stream). Each batch of replies is one transaction: one commit
// for many sagas is what lets the saga keep up under load.
var SagaConsumers = []bus.ConsumerConfig{
	{Stream: events.StreamInventoryEvents, Durable: "orders-saga-inventory", Subjects: []string{"inventory.evt.>"}, Concurrency: 4, Batch: 64},
	{Stream: events.StreamPaymentsEvents, Durable: "orders-saga-payments", Subjects: []string{"payments.evt.>"}, Concurrency: 4, Batch: 64},
}

// sagaInbox names the saga's inbox records, whichever consumer handled them.
const sagaInbox = "orders-saga"

// ReadModelConsumer receives the order events that feed the read model.
// One handler at a time: an order's created and final events in two
// concurrent batches would take their view rows in opposite orders.
var ReadModelConsumer = bus.ConsumerConfig{
	Stream:      events.StreamOrderEvents,
	Durable:     "orders-read-model",
	Subjects:    app.ReadModelSubjects,
	Concurrency: 1,
	Batch:       256,
}

func reply(a *app.App) inbox.TxHandler {
	return func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return a.HandleReply(ctx, tx, m.Payload)
	}
}

func project(a *app.App) inbox.TxHandler {
	return func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return a.Project(ctx, tx, m.Envelope, m.Payload)
	}
}

// SagaHandler advances the saga on one reply, once.
func SagaHandler(db *pgxpool.Pool, a *app.App) bus.Handler {
	return inbox.Handler(db, sagaInbox, reply(a))
}

// SagaBatchHandler advances the sagas of a batch of replies, each reply once.
func SagaBatchHandler(db *pgxpool.Pool, a *app.App) bus.BatchHandler {
	return inbox.Batched(db, sagaInbox, a.HandleReplies, SagaHandler(db, a))
}

// ReadModelHandler projects one order event, once.
func ReadModelHandler(db *pgxpool.Pool, a *app.App) bus.Handler {
	return inbox.Handler(db, ReadModelConsumer.Durable, project(a))
}

// ReadModelBatchHandler projects a batch of order events, each once.
func ReadModelBatchHandler(db *pgxpool.Pool, a *app.App) bus.BatchHandler {
	return inbox.Batched(db, ReadModelConsumer.Durable, a.ProjectAll, ReadModelHandler(db, a))
}
