-- +goose Up
-- The write model. (user_id, idempotency_key) makes a replayed POST return the first order.
CREATE TABLE orders (
    id              text PRIMARY KEY,
    user_id         text NOT NULL,
    status          text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    reason          text NOT NULL DEFAULT '',
    items           jsonb NOT NULL,
    total_cents     bigint NOT NULL DEFAULT 0,
    idempotency_key text,
    request_hash    text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (user_id, idempotency_key)
);

-- The saga of each order: the step whose reply is awaited. The card number is kept only
-- while a charge may still be (re)sent.
CREATE TABLE sagas (
    order_id    text PRIMARY KEY REFERENCES orders (id),
    step        text NOT NULL CHECK (step IN ('reserve', 'charge', 'refund', 'release', 'done')),
    reason      text NOT NULL DEFAULT '',
    card_number text NOT NULL DEFAULT '',
    attempts    integer NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX sagas_waiting ON sagas (updated_at) WHERE step <> 'done';

-- The read model behind GET /api/v1/orders, fed only by the orders.evt.* stream.
CREATE TABLE order_views (
    order_id    text PRIMARY KEY,
    user_id     text NOT NULL,
    status      text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    items       jsonb NOT NULL,
    total_cents bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX order_views_user ON order_views (user_id, created_at DESC);

-- kit/outbox.Schema
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

-- kit/inbox.Schema
CREATE TABLE inbox (
    consumer    text NOT NULL,
    message_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- +goose Down
DROP TABLE inbox;
DROP TABLE outbox;
DROP TABLE order_views;
DROP TABLE sagas;
DROP TABLE orders;
