// Package app holds the notifications use cases: record one notification per
// order event, list a user's notifications.
package app

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/services/notifications/domain"
)

// Repository stores notifications.
type Repository interface {
	// Insert adds n unless its order already has one of its kind.
	Insert(ctx context.Context, tx pgx.Tx, n domain.Notification) error
	List(ctx context.Context, userID, orderID string) ([]domain.Notification, error)
}

// App implements the use cases.
type App struct{ repo Repository }

// New builds the App.
func New(repo Repository) *App { return &App{repo: repo} }

// Record stores the notification an order event causes, if any.
func (a *App) Record(ctx context.Context, tx pgx.Tx, payload any) error {
	n, ok := domain.FromEvent(payload)
	if !ok {
		return nil
	}
	n.ID = uuid.NewString()
	return a.repo.Insert(ctx, tx, n)
}

// List returns userID's notifications, oldest first; orderID ("" for all) filters.
func (a *App) List(ctx context.Context, userID, orderID string) ([]domain.Notification, error) {
	return a.repo.List(ctx, userID, orderID)
}
