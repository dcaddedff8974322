package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/fault"
)

// Publisher is what the relay needs from the bus.
type Publisher interface {
	PublishBatch(ctx context.Context, msgs []*nats.Msg) []error
}

var _ Publisher = (*bus.Bus)(nil)

// Relay publishes committed outbox rows and marks them sent. Run one per
// process: Wake reaches a single relay. Replicas each run theirs; rows are
// shared out with SKIP LOCKED, and so are they between the rounds one relay
// runs at once.
type Relay struct {
	DB  *pgxpool.Pool
	Bus Publisher
	Log *slog.Logger
	// Batch is the most rows published per round; default 512. A round
	// publishes its rows at once (see bus.Bus.PublishBatch) and marks them
	// in one UPDATE, so a backlog drains in few rounds.
	Batch int
	// Rounds is how many rounds run at once; default 2. A round spends most
	// of its time waiting for the broker's acks, and rows committed
	// meanwhile need not wait for it.
	Rounds int
	// Poll is the interval at which rows are looked for without a Wake
	// (rows of other instances, or a missed Wake); default 1s.
	Poll time.Duration
	// Retain is how long sent rows are kept before deletion; default 1h.
	Retain time.Duration
	// AfterPublish, when set, runs after a batch was published and before
	// it is marked sent. Tests use it to crash the relay at the worst moment.
	AfterPublish func()

	outageOnce sync.Once
	outage     *fault.Outage
}

// paused tracks the relay's rounds failing: one warning when they start
// failing, one when they succeed again, a capped backoff in between.
func (r *Relay) paused() *fault.Outage {
	r.outageOnce.Do(func() { r.outage = fault.NewOutage(r.Log, "outbox relay") })
	return r.outage
}

// healthGrace is how long rounds may fail before Healthy reports it.
const healthGrace = 2 * time.Second

// Healthy is nil unless the relay's rounds have been failing for longer
// than healthGrace (the database or the broker is down): committed
// messages are then waiting, unsent, for it to come back.
func (r *Relay) Healthy(context.Context) error { return r.paused().Err(healthGrace) }

func (r *Relay) defaults() {
	if r.Batch <= 0 {
		r.Batch = 512
	}
	if r.Rounds <= 0 {
		r.Rounds = 2
	}
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.Retain <= 0 {
		r.Retain = time.Hour
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	r.paused()
}

// drainTimeout bounds the last rounds of a relay that is stopping.
const drainTimeout = 5 * time.Second

// Run relays until ctx ends, then publishes what was committed until then
// (within drainTimeout), so that a graceful stop leaves no message behind.
// Publishing failures (broker down) leave rows unsent; they are retried on
// the next round, or by the next start.
func (r *Relay) Run(ctx context.Context) error {
	r.defaults()
	var wg sync.WaitGroup
	for range r.Rounds {
		wg.Go(func() { r.relay(ctx) })
	}
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			r.drain(context.WithoutCancel(ctx))
			return nil
		case <-prune.C:
			if _, err := r.DB.Exec(ctx, `DELETE FROM outbox WHERE sent_at < now() - $1::interval`, r.Retain.String()); err != nil {
				r.Log.Warn("outbox prune failed", "err", err)
			}
		}
	}
}

// drain runs rounds until one finds fewer rows than a full batch.
func (r *Relay) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	for {
		n, err := r.Flush(ctx)
		if err != nil {
			r.Log.Warn("outbox relay could not drain before stopping", "err", err)
			return
		}
		if n < r.Batch {
			return
		}
	}
}

// relay runs rounds one after the other until ctx ends.
func (r *Relay) relay(ctx context.Context) {
	poll := time.NewTicker(r.Poll)
	defer poll.Stop()
	for {
		leave, ok := r.paused().Admit(ctx.Done())
		if !ok {
			return
		}
		n, err := r.Flush(ctx)
		leave()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// Rows stay unsent (a failed round marks nothing) and go out
			// with the same ids once the dependency is back, however long
			// that takes; Admit spaces the tries.
			r.paused().Fail(err)
			continue
		}
		r.paused().OK()
		if n == r.Batch {
			continue // more rows are waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-wakeups:
		case <-poll.C:
		}
	}
}

type row struct {
	seq     int64
	id      string
	subject string
	payload []byte
	headers nats.Header
}

// Flush publishes one batch of unsent rows and marks the published ones.
// Rows are locked with SKIP LOCKED, so replicas relay disjoint rows.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	r.defaults()
	tx, err := r.DB.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	rows, err := tx.Query(ctx, `SELECT seq, id, subject, payload, headers FROM outbox
		WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, r.Batch)
	if err != nil {
		return 0, fmt.Errorf("select unsent: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(rs pgx.CollectableRow) (row, error) {
		var x row
		var hjson []byte
		if err := rs.Scan(&x.seq, &x.id, &x.subject, &x.payload, &hjson); err != nil {
			return x, err
		}
		x.headers = nats.Header{}
		if err := json.Unmarshal(hjson, &x.headers); err != nil {
			return x, fmt.Errorf("headers of %s: %w", x.id, err)
		}
		return x, nil
	})
	if err != nil {
		return 0, fmt.Errorf("read unsent: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}

	msgs := make([]*nats.Msg, len(batch))
	ends := make([]func(error), len(batch))
	for i, x := range batch {
		// The publish span is a child of the trace stored with the row, and
		// the message carries the publish span, so the consumer's span
		// nests under it.
		pctx, span := bus.StartPublishSpan(bus.Extract(ctx, x.headers), x.subject)
		// The stored trace headers make way for the publish span's, which
		// NewMsg injects when none are left.
		hdr := nats.Header{}
		for k, vs := range x.headers {
			if k != bus.HeaderTraceparent && k != bus.HeaderTracestate {
				hdr[k] = vs
			}
		}
		msgs[i] = bus.NewMsg(pctx, x.subject, x.id, x.payload, hdr)
		ends[i] = func(err error) {
			if err != nil {
				span.RecordError(err)
			}
			span.End()
		}
	}
	// Acks lost to a broker restart must not stall the relay: unacked rows
	// stay unsent and go again next round with the same id.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	perr := r.Bus.PublishBatch(pctx, msgs)
	cancel()
	sent := make([]int64, 0, len(batch))
	var firstErr error
	for i, err := range perr {
		ends[i](err)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		sent = append(sent, batch[i].seq)
	}
	if r.AfterPublish != nil && len(sent) > 0 {
		r.AfterPublish()
	}
	if len(sent) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE outbox SET sent_at = now() WHERE seq = ANY($1)`, sent); err != nil {
			return 0, fmt.Errorf("mark sent: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
	}
	if firstErr != nil {
		return len(sent), fmt.Errorf("publish: %w", firstErr)
	}
	return len(sent), nil
}
