// Package app holds the inventory use cases: the catalogue, and reserving and releasing stock by
// order id. Reserve and Release run in their own transaction; ReserveTx and ReleaseTx run in the
// caller's, so a message consumer can commit its inbox row atomically with the stock change.
// ReserveCommand and ReleaseCommand answer the saga's commands: they add the reply to the outbox
// themselves, in the caller's transaction (the app layer writes the outbox in every service).
package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/inventory/domain"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/outbox"
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

// ReserveCommand reserves cmd's items in tx, all or none, and queues the answer on replies, the
// outbox batch the caller sends in tx: StockReserved priced from prices (unit price by product
// id), or StockRejected. A refusal is an answer, not a failure: ReserveTx undoes its own writes
// (it works in a savepoint), so the rejection commits together with the caller's inbox record.
func (a *App) ReserveCommand(ctx context.Context, tx pgx.Tx, replies *pgx.Batch, cmd events.ReserveStock, prices map[string]int64) error {
	items := make([]domain.Item, len(cmd.Items))
	for i, it := range cmd.Items {
		items[i] = domain.Item{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	err := a.ReserveTx(ctx, tx, cmd.OrderID, items)
	var verr *domain.ValidationError
	if errors.Is(err, domain.ErrInsufficientStock) || errors.Is(err, domain.ErrUnknownProduct) ||
		errors.Is(err, domain.ErrReleased) || errors.As(err, &verr) {
		_, qerr := outbox.Queue(ctx, replies, events.InventoryRejected, events.StockRejected{OrderID: cmd.OrderID, Reason: err.Error()})
		return qerr
	}
	if err != nil {
		return err
	}
	priced := make([]events.PricedItem, len(cmd.Items))
	for i, it := range cmd.Items {
		priced[i] = events.PricedItem{ProductID: it.ProductID, Quantity: it.Quantity, UnitPriceCents: prices[it.ProductID]}
	}
	_, err = outbox.Queue(ctx, replies, events.InventoryReserved, events.StockReserved{OrderID: cmd.OrderID, Items: priced})
	return err
}

// ReleaseCommand releases cmd's order in tx and queues StockReleased on replies.
func (a *App) ReleaseCommand(ctx context.Context, tx pgx.Tx, replies *pgx.Batch, cmd events.ReleaseStock) error {
	if err := a.ReleaseTx(ctx, tx, cmd.OrderID); err != nil {
		return err
	}
	_, err := outbox.Queue(ctx, replies, events.InventoryReleased, events.StockReleased{OrderID: cmd.OrderID})
	return err
}
