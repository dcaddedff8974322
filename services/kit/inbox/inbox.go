// Package inbox makes a consumer idempotent: the id of every handled
// message is recorded in the same transaction as the handler's effects, so
// a redelivered or republished copy is recognised and skipped.
package inbox

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/outbox"
)

// Schema is the table every consuming service creates in one of its own
// migrations; kit owns it as it owns outbox.Schema.
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

// ClaimAll records every id of ids for consumer inside tx, in id order (so
// that concurrent claims of overlapping ids wait for each other instead of
// deadlocking), and returns the ids that were not handled before.
func ClaimAll(ctx context.Context, tx pgx.Tx, consumer string, ids []string) (map[string]bool, error) {
	sorted := slices.Compact(slices.Sorted(slices.Values(ids)))
	rows, err := tx.Query(ctx,
		`INSERT INTO inbox (consumer, message_id) SELECT $1, id FROM unnest($2::text[]) AS id ORDER BY id
		ON CONFLICT DO NOTHING RETURNING message_id`, consumer, sorted)
	if err != nil {
		return nil, fmt.Errorf("inbox claim %d messages: %w", len(sorted), err)
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("inbox claim %d messages: %w", len(sorted), err)
	}
	fresh := make(map[string]bool, len(claimed))
	for _, id := range claimed {
		fresh[id] = true
	}
	return fresh, nil
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

// BatchTxHandler handles, inside one transaction, the messages of a batch
// that had not been handled before (each envelope id once, in delivery order).
type BatchTxHandler func(ctx context.Context, tx pgx.Tx, fresh []bus.Message) error

// Batched adapts fn to a bus.BatchHandler: the whole batch is claimed and
// handled in one transaction, so it costs one commit instead of one per
// message. When that transaction fails, every message is handled again on
// its own by single (normally Handler), so that only the message at fault
// fails and the others are acked.
func Batched(db *pgxpool.Pool, consumer string, fn BatchTxHandler, single bus.Handler) bus.BatchHandler {
	return func(ctx context.Context, ms []bus.Message) []error {
		errs := make([]error, len(ms))
		if len(ms) == 1 {
			errs[0] = single(ms[0].Context(ctx), ms[0])
			return errs
		}
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			ids := make([]string, len(ms))
			for i, m := range ms {
				ids[i] = m.Envelope.ID
			}
			fresh, err := ClaimAll(ctx, tx, consumer, ids)
			if err != nil {
				return err
			}
			todo := make([]bus.Message, 0, len(fresh))
			for _, m := range ms {
				if fresh[m.Envelope.ID] {
					delete(fresh, m.Envelope.ID) // a second copy in the same batch is a duplicate
					todo = append(todo, m)
				}
			}
			if len(todo) == 0 {
				return nil
			}
			return fn(ctx, tx, todo)
		})
		if err == nil {
			outbox.Wake()
			return errs
		}
		for i, m := range ms {
			errs[i] = single(m.Context(ctx), m)
		}
		return errs
	}
}

// BatchHandler is Batched for a handler of one message at a time: fn runs
// for each fresh message of the batch, in the batch's transaction.
func BatchHandler(db *pgxpool.Pool, consumer string, fn TxHandler) bus.BatchHandler {
	each := func(ctx context.Context, tx pgx.Tx, fresh []bus.Message) error {
		for _, m := range fresh {
			if err := fn(m.Context(ctx), tx, m); err != nil {
				return err
			}
		}
		return nil
	}
	return Batched(db, consumer, each, Handler(db, consumer, fn))
}
