-- +goose Up
-- One notification per order and kind: the unique constraint absorbs duplicates
-- that reach the handler under a new message id.
CREATE TABLE notifications (
    id         text PRIMARY KEY,
    order_id   text NOT NULL,
    user_id    text NOT NULL,
    kind       text NOT NULL,
    message    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, kind)
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);

-- kit/inbox.Schema
CREATE TABLE inbox (
    consumer    text NOT NULL,
    message_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- +goose Down
DROP TABLE inbox;
DROP TABLE notifications;
