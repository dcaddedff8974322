-- +goose Up
-- One row per order: the primary key is what makes charging idempotent per order.
CREATE TABLE payments (
    order_id     text PRIMARY KEY,
    user_id      text NOT NULL,
    status       text NOT NULL CHECK (status IN ('CHARGED', 'DECLINED', 'FAILED', 'REFUNDED', 'VOIDED')),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    card_last4   text NOT NULL,
    reason       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    refunded_at  timestamptz
);

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
DROP TABLE payments;
