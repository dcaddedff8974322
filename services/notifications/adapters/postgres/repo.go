// Package postgres stores notifications in the notifications database.
package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/notifications/app"
	"github.com/msctl/msctl/services/notifications/domain"
)

var _ app.Repository = (*Repo)(nil)

// Repo is the Postgres repository.
type Repo struct{ db *pgxpool.Pool }

// New returns a Repo over db.
func New(db *pgxpool.Pool) *Repo { return &Repo{db: db} }

// maxList bounds one listing.
const maxList = 500

// Insert adds n; a second notification of the same kind for the order is dropped.
func (r *Repo) Insert(ctx context.Context, tx pgx.Tx, n domain.Notification) error {
	if _, err := tx.Exec(ctx, `INSERT INTO notifications (id, order_id, user_id, kind, message)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, kind) DO NOTHING`,
		n.ID, n.OrderID, n.UserID, n.Kind, n.Message); err != nil {
		return fmt.Errorf("insert notification: %w", err)
	}
	return nil
}

// List returns a user's notifications, oldest first.
func (r *Repo) List(ctx context.Context, userID, orderID string) ([]domain.Notification, error) {
	rows, err := r.db.Query(ctx, `SELECT id, order_id, user_id, kind, message, created_at FROM notifications
		WHERE user_id = $1 AND ($2 = '' OR order_id = $2) ORDER BY created_at, id LIMIT $3`, userID, orderID, maxList)
	if err != nil {
		return nil, fmt.Errorf("select notifications: %w", err)
	}
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Notification, error) {
		var n domain.Notification
		err := r.Scan(&n.ID, &n.OrderID, &n.UserID, &n.Kind, &n.Message, &n.CreatedAt)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	return ns, nil
}
