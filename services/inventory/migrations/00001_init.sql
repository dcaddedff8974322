-- +goose Up
CREATE TABLE products (
    id          text PRIMARY KEY,
    sku         text NOT NULL UNIQUE,
    name        text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    -- The CHECK is the last line of defence against oversell; the reserving UPDATE never lets it fire.
    stock       integer NOT NULL CHECK (stock >= 0)
);

-- One row per order that was ever reserved or released. A release that arrives before its
-- reserve leaves a 'released' row, so the late reserve is refused instead of leaking stock.
CREATE TABLE reservations (
    order_id    text PRIMARY KEY,
    status      text NOT NULL CHECK (status IN ('reserved', 'released')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);

CREATE TABLE reservation_items (
    order_id   text NOT NULL REFERENCES reservations (order_id),
    product_id text NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

INSERT INTO products (id, sku, name, price_cents, stock) VALUES
    ('bf16a7f8-dad1-48c7-9049-62fbe5440f29', 'KB-001',  'Mechanical keyboard',     8900, 50),
    ('fe9cc123-161a-45cd-87e1-7236b398020b', 'MS-002',  'Wireless mouse',          2900, 120),
    ('70820ef6-6e2f-4a42-b18d-26baf5e3d987', 'MN-003',  '27" monitor',            24900, 15),
    ('6d4947b4-8939-4f55-a7fc-26ec48194714', 'HS-004',  'Noise-cancelling headset', 15900, 30),
    ('224c7270-6004-47fc-ac37-68bc532b5403', 'CB-005',  'USB-C cable',              900, 500),
    ('0d9a2d03-a28a-450a-8e07-fd1643d11f59', 'DK-006',  'Docking station',        19900, 0);

-- +goose Down
DROP TABLE reservation_items;
DROP TABLE reservations;
DROP TABLE products;
