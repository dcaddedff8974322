// Package broker connects payments to the bus: it consumes the charge and
// refund commands and answers through the outbox, in one transaction with
// the inbox record and the payment change.
package broker

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/kit/outbox"
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
	return inbox.Handler(db, Consumer.Durable, command(a))
}

// BatchHandler handles a batch of payments commands, each once.
func BatchHandler(db *pgxpool.Pool, a *app.App) bus.BatchHandler {
	return inbox.BatchHandler(db, Consumer.Durable, command(a))
}

// command charges or refunds and answers through the outbox, in tx.
func command(a *app.App) inbox.TxHandler {
	return func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		var reply app.Reply
		var err error
		switch p := m.Payload.(type) {
		case *events.ChargePayment:
			reply, err = a.Charge(ctx, tx, *p)
		case *events.RefundPayment:
			reply, err = a.Refund(ctx, tx, *p)
		default:
			return bus.Permanent(fmt.Errorf("payments does not handle %s", m.Subject))
		}
		if err != nil {
			return err
		}
		_, err = outbox.Add(ctx, tx, reply.Subject, reply.Data)
		return err
	}
}
