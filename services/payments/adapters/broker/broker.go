// Package broker connects payments to the bus: it consumes the charge and
// refund commands, each batch in one transaction with the inbox record; the
// app charges or refunds and queues its answer for the outbox in it.
package broker

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/payments/app"
)

// Consumer is the durable consumer of payments commands. Each batch of
// commands is handled in one transaction.
var Consumer = bus.ConsumerConfig{
	Stream:      events.StreamPaymentsCommands,
	Durable:     "payments",
	Subjects:    []string{"payments.cmd.>"},
	Concurrency: 4,
	Batch:       64,
}

// Handler handles one payments command.
func Handler(db *pgxpool.Pool, a *app.App) bus.Handler {
	fn := commands(a)
	return inbox.Handler(db, Consumer.Durable, func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		return fn(ctx, tx, []bus.Message{m})
	})
}

// BatchHandler handles a batch of payments commands, each once.
func BatchHandler(db *pgxpool.Pool, a *app.App) bus.BatchHandler {
	return inbox.Batched(db, Consumer.Durable, commands(a), Handler(db, a))
}

// commands has the app charge or refund, in order; the replies it queues
// for the outbox are written together at the end, in one round trip.
func commands(a *app.App) inbox.BatchTxHandler {
	return func(ctx context.Context, tx pgx.Tx, ms []bus.Message) error {
		var replies pgx.Batch
		for _, m := range ms {
			mctx := m.Context(ctx)
			var err error
			switch p := m.Payload.(type) {
			case *events.ChargePayment:
				err = a.Charge(mctx, tx, &replies, *p)
			case *events.RefundPayment:
				err = a.Refund(mctx, tx, &replies, *p)
			default:
				return bus.Permanent(fmt.Errorf("payments does not handle %s", m.Subject))
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
}
