-- +goose Up
-- The saga keeps the card sealed for payments (kit/vault), never the number: the column
-- says so. A saga written before sealing existed still holds the number; the app seals it
-- when it sends the charge, and clears it when the saga ends, like every card.
ALTER TABLE sagas RENAME COLUMN card_number TO card;

-- +goose Down
ALTER TABLE sagas RENAME COLUMN card TO card_number;
