// Package postgres stores payments in the payments database.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/payments/app"
	"github.com/msctl/msctl/services/payments/domain"
)

var _ app.Repository = (*Repo)(nil)

// Repo is the Postgres repository.
type Repo struct{ db *pgxpool.Pool }

// New returns a Repo over db.
func New(db *pgxpool.Pool) *Repo { return &Repo{db: db} }

const columns = `order_id, user_id, status, amount_cents, card_last4, reason, created_at, refunded_at`

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func one(ctx context.Context, q queryer, sql, orderID string) (domain.Payment, error) {
	rows, err := q.Query(ctx, sql, orderID)
	if err != nil {
		return domain.Payment{}, fmt.Errorf("select payment: %w", err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (domain.Payment, error) {
		var p domain.Payment
		err := r.Scan(&p.OrderID, &p.UserID, &p.Status, &p.AmountCents, &p.CardLast4, &p.Reason, &p.CreatedAt, &p.RefundedAt)
		return p, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Payment{}, app.ErrNotFound
	}
	if err != nil {
		return domain.Payment{}, fmt.Errorf("read payment: %w", err)
	}
	return p, nil
}

// Insert adds p unless its order has a payment already.
func (r *Repo) Insert(ctx context.Context, tx pgx.Tx, p domain.Payment) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO payments (order_id, user_id, status, amount_cents, card_last4, reason, refunded_at)
		VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $3 = 'VOIDED' THEN now() END) ON CONFLICT (order_id) DO NOTHING`,
		p.OrderID, p.UserID, p.Status, p.AmountCents, p.CardLast4, p.Reason)
	if err != nil {
		return false, fmt.Errorf("insert payment: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Lock reads the order's payment FOR UPDATE in tx.
func (r *Repo) Lock(ctx context.Context, tx pgx.Tx, orderID string) (domain.Payment, error) {
	return one(ctx, tx, `SELECT `+columns+` FROM payments WHERE order_id = $1 FOR UPDATE`, orderID)
}

// SetStatus changes a payment's status; REFUNDED also stamps refunded_at.
func (r *Repo) SetStatus(ctx context.Context, tx pgx.Tx, orderID, status string) error {
	_, err := tx.Exec(ctx, `UPDATE payments SET status = $2,
		refunded_at = CASE WHEN $2 = 'REFUNDED' THEN now() ELSE refunded_at END WHERE order_id = $1`, orderID, status)
	if err != nil {
		return fmt.Errorf("update payment: %w", err)
	}
	return nil
}

// Get reads the order's payment.
func (r *Repo) Get(ctx context.Context, orderID string) (domain.Payment, error) {
	return one(ctx, r.db, `SELECT `+columns+` FROM payments WHERE order_id = $1`, orderID)
}
