// Package inbox makes a consumer idempotent: the id of every handled
// message is recorded in the same transaction as the handler's effects, so
// a redelivered or republished copy is recognised and skipped.
package inbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/outbox"
)

// Schema is the table every consuming service creates in one of its own
// migrations.
const Schema = `
CREATE TABLE inbox (
    consumer    text NOT NULL,
    message_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
`

// Claim records messageID for consumer inside tx. It reports false when the
// message was already handled (the caller then does nothing).
func Claim(ctx context.Context, tx pgx.Tx, consumer, messageID string) (bool, error) {
	tag, err := tx.Exec(ctx,
		`INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		consumer, messageID)
	if err != nil {
		return false, fmt.Errorf("inbox claim %s: %w", messageID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// TxHandler handles one message inside the transaction that claimed it.
type TxHandler func(ctx context.Context, tx pgx.Tx, m bus.Message) error

// Handler adapts fn to a bus.Handler: each message runs in its own
// transaction that first claims the envelope id; duplicates are acked
// without calling fn; after a commit the outbox relay is woken. The envelope id, not the Nats-Msg-Id, is the key, so
// even a copy republished under a new Nats-Msg-Id is absorbed.
func Handler(db *pgxpool.Pool, consumer string, fn TxHandler) bus.Handler {
	return func(ctx context.Context, m bus.Message) error {
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			fresh, err := Claim(ctx, tx, consumer, m.Envelope.ID)
			if err != nil || !fresh {
				return err
			}
			return fn(ctx, tx, m)
		})
		if err == nil {
			outbox.Wake() // fn's replies, if any, go out now
		}
		return err
	}
}
