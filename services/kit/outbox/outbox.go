// Package outbox is the transactional outbox: a service writes its state
// change and the message announcing it in one database transaction (Add),
// and a Relay publishes committed rows to JetStream afterwards, using the
// row's id as Nats-Msg-Id. A crash between publish and mark only leads to a
// republish with the same id, which the stream's dedup window (and the
// consumers' inbox) absorbs.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
)

// Schema is the table every service with an outbox creates in one of its
// own migrations (database per service, so it is copied, not shared). kit
// owns it: TestServiceMigrationsCopyKitTables pins every copy to it, and the
// scaffold writes it into new services.
const Schema = `
CREATE TABLE outbox (
    seq        bigserial PRIMARY KEY,
    id         text NOT NULL UNIQUE,
    subject    text NOT NULL,
    payload    bytea NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
`

// wakeups carries Wake calls to the relay of this process.
var wakeups = make(chan struct{}, 1)

// Wake tells this process's relay that a transaction which added outbox
// rows has committed, so it publishes them now rather than at its next
// poll. Call it after the commit; calling it needlessly is harmless.
//
// (Postgres NOTIFY would do this across processes, but a notifying commit
// takes a cluster-wide lock, serialising every such commit of every
// service behind one WAL flush at a time.)
func Wake() {
	select {
	case wakeups <- struct{}{}:
	default:
	}
}

// insertRow is the statement that stores one message.
const insertRow = `INSERT INTO outbox (id, subject, payload, headers) VALUES ($1, $2, $3, $4)`

// Add stores a message for subject inside tx and returns its envelope. The
// current trace context is stored with it, so the relay's publish (and
// every consumer) continues the trace that caused the message. Call Wake
// once tx has committed.
func Add(ctx context.Context, tx pgx.Tx, subject string, data any) (events.Envelope, error) {
	env, args, err := newRow(ctx, subject, data)
	if err != nil {
		return events.Envelope{}, err
	}
	if _, err := tx.Exec(ctx, insertRow, args...); err != nil {
		return events.Envelope{}, fmt.Errorf("outbox add %s: %w", subject, err)
	}
	return env, nil
}

// Queue is Add for a batch of statements: the message is stored when b is
// sent in the transaction (pgx.Tx.SendBatch), together with the batch's
// other statements in one round trip.
func Queue(ctx context.Context, b *pgx.Batch, subject string, data any) (events.Envelope, error) {
	env, args, err := newRow(ctx, subject, data)
	if err != nil {
		return events.Envelope{}, err
	}
	b.Queue(insertRow, args...)
	return env, nil
}

// newRow builds the envelope of a message and the arguments of insertRow.
func newRow(ctx context.Context, subject string, data any) (events.Envelope, []any, error) {
	env, err := events.New(subject, data)
	if err != nil {
		return events.Envelope{}, nil, fmt.Errorf("outbox add: %w", err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return events.Envelope{}, nil, fmt.Errorf("outbox add %s: %w", subject, err)
	}
	hdr := nats.Header{}
	bus.Inject(ctx, hdr)
	hjson, err := json.Marshal(hdr)
	if err != nil {
		return events.Envelope{}, nil, fmt.Errorf("outbox add %s: %w", subject, err)
	}
	return env, []any{env.ID, subject, raw, hjson}, nil
}
