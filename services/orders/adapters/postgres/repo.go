// Package postgres stores orders, sagas and the order read model in the
// orders database.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/orders/app"
	"github.com/msctl/msctl/services/orders/domain"
)

var _ app.Repository = (*Repo)(nil)

// Repo is the Postgres repository.
type Repo struct{ db *pgxpool.Pool }

// New returns a Repo over db.
func New(db *pgxpool.Pool) *Repo { return &Repo{db: db} }

const orderColumns = `o.id, o.user_id, o.status, o.reason, o.items, o.total_cents, o.created_at, o.updated_at`

func scanOrder(row pgx.Row, extra ...any) (domain.Order, error) {
	var o domain.Order
	var items []byte
	dest := append([]any{&o.ID, &o.UserID, &o.Status, &o.Reason, &items, &o.TotalCents, &o.CreatedAt, &o.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return o, err
	}
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return o, fmt.Errorf("items of order %s: %w", o.ID, err)
	}
	return o, nil
}

// CreateOrder inserts o and its saga, or returns the order already placed
// under (user, idemKey).
func (r *Repo) CreateOrder(ctx context.Context, tx pgx.Tx, o domain.Order, s domain.Saga, idemKey, requestHash string) (domain.Order, string, bool, error) {
	items, err := json.Marshal(o.Items)
	if err != nil {
		return domain.Order{}, "", false, fmt.Errorf("encode items: %w", err)
	}
	var key *string
	if idemKey != "" {
		key = &idemKey
	}
	// A concurrent request with the same key waits on the unique index and
	// then takes the DO NOTHING branch, seeing the committed first order.
	tag, err := tx.Exec(ctx, `INSERT INTO orders (id, user_id, status, reason, items, total_cents, idempotency_key, request_hash, created_at, updated_at)
		VALUES ($1, $2, $3, '', $4, 0, $5, $6, $7, $7) ON CONFLICT (user_id, idempotency_key) DO NOTHING`,
		o.ID, o.UserID, o.Status, items, key, requestHash, o.CreatedAt)
	if err != nil {
		return domain.Order{}, "", false, fmt.Errorf("insert order: %w", err)
	}
	if tag.RowsAffected() == 0 {
		var hash string
		existing, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+`, o.request_hash FROM orders o
			WHERE o.user_id = $1 AND o.idempotency_key = $2`, o.UserID, idemKey), &hash)
		if err != nil {
			return domain.Order{}, "", false, fmt.Errorf("select order by idempotency key: %w", err)
		}
		return existing, hash, false, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sagas (order_id, step, reason, card, attempts, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.OrderID, s.Step, s.Reason, s.Card, s.Attempts, s.UpdatedAt); err != nil {
		return domain.Order{}, "", false, fmt.Errorf("insert saga: %w", err)
	}
	return o, requestHash, true, nil
}

// Order reads one order of userID.
func (r *Repo) Order(ctx context.Context, userID, id string) (domain.Order, error) {
	o, err := scanOrder(r.db.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders o WHERE o.id = $1 AND o.user_id = $2`, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Order{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("select order: %w", err)
	}
	return o, nil
}

const sagaColumns = `s.order_id, s.step, s.reason, s.card, s.attempts, s.updated_at`

func sagaDest(s *domain.Saga) []any {
	return []any{&s.OrderID, &s.Step, &s.Reason, &s.Card, &s.Attempts, &s.UpdatedAt}
}

// LockSagas reads the orders and sagas of orderIDs, locking the saga rows
// in order id order.
func (r *Repo) LockSagas(ctx context.Context, tx pgx.Tx, orderIDs []string) ([]domain.Order, []domain.Saga, error) {
	rows, err := tx.Query(ctx, `SELECT `+orderColumns+`, `+sagaColumns+` FROM sagas s JOIN orders o ON o.id = s.order_id
		WHERE s.order_id = ANY($1) ORDER BY s.order_id FOR UPDATE OF s`, orderIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("lock sagas: %w", err)
	}
	return collectSagas(rows)
}

// StuckSagas locks unfinished sagas last updated before the given time.
func (r *Repo) StuckSagas(ctx context.Context, tx pgx.Tx, before time.Time, limit int) ([]domain.Order, []domain.Saga, error) {
	rows, err := tx.Query(ctx, `SELECT `+orderColumns+`, `+sagaColumns+` FROM sagas s JOIN orders o ON o.id = s.order_id
		WHERE s.step <> 'done' AND s.updated_at < $1 ORDER BY s.updated_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED`, before, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("select stuck sagas: %w", err)
	}
	return collectSagas(rows)
}

func collectSagas(rows pgx.Rows) ([]domain.Order, []domain.Saga, error) {
	defer rows.Close()
	var orders []domain.Order
	var sagas []domain.Saga
	for rows.Next() {
		var s domain.Saga
		o, err := scanOrder(rows, sagaDest(&s)...)
		if err != nil {
			return nil, nil, fmt.Errorf("read saga: %w", err)
		}
		orders, sagas = append(orders, o), append(sagas, s)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read sagas: %w", err)
	}
	return orders, sagas, nil
}

// QueueSaveOrder queues the update of an order's mutable fields on b.
func (r *Repo) QueueSaveOrder(b *pgx.Batch, o domain.Order) error {
	items, err := json.Marshal(o.Items)
	if err != nil {
		return fmt.Errorf("encode items: %w", err)
	}
	b.Queue(`UPDATE orders SET status = $2, reason = $3, items = $4, total_cents = $5, updated_at = $6 WHERE id = $1`,
		o.ID, o.Status, o.Reason, items, o.TotalCents, o.UpdatedAt)
	return nil
}

// QueueSaveSaga queues the update of a saga's state on b.
func (r *Repo) QueueSaveSaga(b *pgx.Batch, s domain.Saga) {
	b.Queue(`UPDATE sagas SET step = $2, reason = $3, card = $4, attempts = $5, updated_at = $6 WHERE order_id = $1`,
		s.OrderID, s.Step, s.Reason, s.Card, s.Attempts, s.UpdatedAt)
}

// QueueUpsertView queues on b the insert of a read-model row, or the
// overwrite of a PENDING one with an outcome.
func (r *Repo) QueueUpsertView(b *pgx.Batch, v domain.View) error {
	items, err := json.Marshal(v.Items)
	if err != nil {
		return fmt.Errorf("encode items: %w", err)
	}
	b.Queue(`INSERT INTO order_views (order_id, user_id, status, reason, items, total_cents, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, items = EXCLUDED.items,
			total_cents = EXCLUDED.total_cents, updated_at = EXCLUDED.updated_at
		WHERE order_views.status = 'PENDING' AND EXCLUDED.status <> 'PENDING'`,
		v.OrderID, v.UserID, v.Status, v.Reason, items, v.TotalCents, v.CreatedAt, v.UpdatedAt)
	return nil
}

// Views lists a user's orders from the read model, newest first.
func (r *Repo) Views(ctx context.Context, userID string, limit int) ([]domain.View, error) {
	rows, err := r.db.Query(ctx, `SELECT order_id, user_id, status, reason, items, total_cents, created_at, updated_at
		FROM order_views WHERE user_id = $1 ORDER BY created_at DESC, order_id DESC LIMIT $2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("select order views: %w", err)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.View, error) {
		var v domain.View
		var items []byte
		if err := row.Scan(&v.OrderID, &v.UserID, &v.Status, &v.Reason, &items, &v.TotalCents, &v.CreatedAt, &v.UpdatedAt); err != nil {
			return v, err
		}
		return v, json.Unmarshal(items, &v.Items)
	})
	if err != nil {
		return nil, fmt.Errorf("read order views: %w", err)
	}
	return vs, nil
}

// ClearViews empties the read model (in tx, so readers see the old one until commit).
func (r *Repo) ClearViews(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `DELETE FROM order_views`); err != nil {
		return fmt.Errorf("clear order views: %w", err)
	}
	return nil
}
