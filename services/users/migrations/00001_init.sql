-- +goose Up
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    name          text NOT NULL,
    password_hash bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Ed25519 seeds of the JWT signing keys; the newest signs, all are published in the JWKS.
CREATE TABLE signing_keys (
    kid        text PRIMARY KEY,
    seed       bytea NOT NULL CHECK (length(seed) = 32),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE users;
