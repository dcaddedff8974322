package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/bus"
)

// DefaultRetain is how long an inbox row is kept by default. A row is
// needed only while a copy of its message can still reach the consumer:
//   - a republish under the same Nats-Msg-Id within bus.DedupWindow is
//     dropped by the stream, so the window itself needs no row;
//   - a copy after the window (a relay that published, could not mark the
//     row sent and was stopped or cut off longer than the window) and a
//     redelivery of a message whose handler committed but whose ack was
//     lost (the broker went away) come back after that outage.
//
// The streams keep messages by size, not by age, so their retention gives
// no horizon; a day covers any outage the shop is meant to ride out, plus
// the dedup window, with a wide margin.
const DefaultRetain = 24 * time.Hour

// pruneBatch bounds the rows one DELETE removes, so that pruning a large
// backlog never holds locks on a big share of the table at once.
const pruneBatch = 10000

// Prune deletes the inbox rows received longer than retain ago (never less
// than bus.DedupWindow) and returns how many it deleted.
func Prune(ctx context.Context, db *pgxpool.Pool, retain time.Duration) (int64, error) {
	retain = max(retain, bus.DedupWindow)
	var total int64
	for {
		tag, err := db.Exec(ctx, `DELETE FROM inbox WHERE ctid IN (
			SELECT ctid FROM inbox WHERE received_at < now() - $1::interval LIMIT $2)`,
			retain.String(), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("prune inbox: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}

// RunPruner prunes the inbox every interval until ctx ends, keeping
// retain (DefaultRetain when zero). Failures (the database is down) are
// logged and retried at the next interval.
func RunPruner(ctx context.Context, db *pgxpool.Pool, retain, interval time.Duration, log *slog.Logger) error {
	if retain <= 0 {
		retain = DefaultRetain
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := Prune(ctx, db, retain)
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
			log.Info("no inbox table: its consumers do not use kit/inbox, nothing to prune")
			return nil
		case err != nil && ctx.Err() == nil:
			log.Warn("inbox prune failed, retrying later", "err", err, "in", interval)
		case n > 0:
			log.Info("inbox pruned", "rows", n, "older_than", retain)
		}
	}
}
