// Package app holds the inventory use cases: the catalogue, and reserving and releasing stock by
// order id. Reserve and Release run in their own transaction; ReserveTx and ReleaseTx run in the
// caller's, so a message consumer can commit its inbox and outbox rows atomically with the stock
// change.
package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/inventory/domain"
	"github.com/msctl/msctl/services/kit/pg"
)

// Errors returned by Reserve and ReserveTx; test with errors.Is.
var (
	ErrInsufficientStock = domain.ErrInsufficientStock
	ErrUnknownProduct    = domain.ErrUnknownProduct
	ErrReleased          = domain.ErrReleased
)

// Repository reads the catalogue and changes stock inside a transaction.
type Repository interface {
	Products(ctx context.Context) ([]domain.Product, error)
	Product(ctx context.Context, id string) (domain.Product, error)
	// Reserve takes stock for normalised items in tx; idempotent per order id.
	Reserve(ctx context.Context, tx pgx.Tx, orderID string, items []domain.Item) error
	// Release returns an order's stock in tx; idempotent, a no-op for unknown orders.
	Release(ctx context.Context, tx pgx.Tx, orderID string) error
}

// App implements the use cases.
type App struct {
	db   *pgxpool.Pool
	repo Repository
}

// New builds the App; db opens the transactions of Reserve and Release.
func New(db *pgxpool.Pool, repo Repository) *App {
	return &App{db: db, repo: repo}
}

// Products lists the catalogue sorted by sku.
func (a *App) Products(ctx context.Context) ([]domain.Product, error) {
	return a.repo.Products(ctx)
}

// Product returns one product or domain.ErrNotFound.
func (a *App) Product(ctx context.Context, id string) (domain.Product, error) {
	return a.repo.Product(ctx, id)
}

// Reserve reserves all items for orderID or none: ErrInsufficientStock or ErrUnknownProduct leave
// stock untouched. Reserving an order again is a no-op; after its release it is ErrReleased.
func (a *App) Reserve(ctx context.Context, orderID string, items []domain.Item) error {
	return pg.InTx(ctx, a.db, func(tx pgx.Tx) error { return a.ReserveTx(ctx, tx, orderID, items) })
}

// ReserveTx is Reserve inside tx. It works in a savepoint: on error its own writes are undone and
// tx stays usable, so the caller can still record the rejection (inbox, outbox) and commit.
func (a *App) ReserveTx(ctx context.Context, tx pgx.Tx, orderID string, items []domain.Item) error {
	if err := domain.ValidateOrderID(orderID); err != nil {
		return err
	}
	norm, err := domain.NormalizeItems(items)
	if err != nil {
		return err
	}
	return inSavepoint(ctx, tx, func(sp pgx.Tx) error { return a.repo.Reserve(ctx, sp, orderID, norm) })
}

func inSavepoint(ctx context.Context, tx pgx.Tx, fn func(pgx.Tx) error) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := fn(sp); err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rbErr))
		}
		return err
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// Release gives back the stock reserved for orderID. Releasing twice or releasing an unknown
// order changes nothing.
func (a *App) Release(ctx context.Context, orderID string) error {
	return pg.InTx(ctx, a.db, func(tx pgx.Tx) error { return a.ReleaseTx(ctx, tx, orderID) })
}

// ReleaseTx is Release inside tx, in a savepoint like ReserveTx.
func (a *App) ReleaseTx(ctx context.Context, tx pgx.Tx, orderID string) error {
	if err := domain.ValidateOrderID(orderID); err != nil {
		return err
	}
	return inSavepoint(ctx, tx, func(sp pgx.Tx) error { return a.repo.Release(ctx, sp, orderID) })
}
