// Package postgres stores the catalogue, stock and reservations in the inventory database.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/inventory/app"
	"github.com/msctl/msctl/services/inventory/domain"
)

var _ app.Repository = (*Repo)(nil)

// Repo is the Postgres repository. Reads use the pool; stock changes run in the caller's
// transaction.
type Repo struct {
	db *pgxpool.Pool
}

// New returns a Repo over db.
func New(db *pgxpool.Pool) *Repo { return &Repo{db: db} }

// Products lists the catalogue by sku.
func (r *Repo) Products(ctx context.Context) ([]domain.Product, error) {
	rows, err := r.db.Query(ctx, `SELECT id, sku, name, price_cents, stock FROM products ORDER BY sku`)
	if err != nil {
		return nil, fmt.Errorf("select products: %w", err)
	}
	ps, err := pgx.CollectRows(rows, scanProduct)
	if err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	return ps, nil
}

// Product finds one product.
func (r *Repo) Product(ctx context.Context, id string) (domain.Product, error) {
	rows, err := r.db.Query(ctx, `SELECT id, sku, name, price_cents, stock FROM products WHERE id = $1`, id)
	if err != nil {
		return domain.Product{}, fmt.Errorf("select product: %w", err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanProduct)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Product{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Product{}, fmt.Errorf("read product: %w", err)
	}
	return p, nil
}

func scanProduct(row pgx.CollectableRow) (domain.Product, error) {
	var p domain.Product
	err := row.Scan(&p.ID, &p.SKU, &p.Name, &p.PriceCents, &p.Stock)
	return p, err
}

// Reserve takes stock for every item (already normalised: merged, sorted by product id) in tx.
// A second reserve of the same order changes nothing. The caller rolls tx back on error.
func (r *Repo) Reserve(ctx context.Context, tx pgx.Tx, orderID string, items []domain.Item) error {
	// Concurrent duplicates block here on the primary key until the first commits, then see it.
	tag, err := tx.Exec(ctx, `INSERT INTO reservations (order_id, status) VALUES ($1, 'reserved') ON CONFLICT (order_id) DO NOTHING`, orderID)
	if err != nil {
		return fmt.Errorf("insert reservation: %w", err)
	}
	if tag.RowsAffected() == 0 {
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM reservations WHERE order_id = $1`, orderID).Scan(&status); err != nil {
			return fmt.Errorf("select reservation: %w", err)
		}
		if status == "released" {
			return domain.ErrReleased
		}
		return nil
	}
	for _, it := range items {
		// The conditional UPDATE is the oversell guard: under READ COMMITTED a waiting updater
		// re-checks stock >= qty against the committed row after the lock is released.
		tag, err := tx.Exec(ctx, `UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2`, it.ProductID, it.Quantity)
		if err != nil {
			return fmt.Errorf("take stock of %s: %w", it.ProductID, err)
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)`, it.ProductID).Scan(&exists); err != nil {
				return fmt.Errorf("check product %s: %w", it.ProductID, err)
			}
			if !exists {
				return fmt.Errorf("%w: %s", domain.ErrUnknownProduct, it.ProductID)
			}
			return fmt.Errorf("%w: %s", domain.ErrInsufficientStock, it.ProductID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reservation_items (order_id, product_id, quantity) VALUES ($1, $2, $3)`,
			orderID, it.ProductID, it.Quantity); err != nil {
			return fmt.Errorf("insert reservation item: %w", err)
		}
	}
	return nil
}

// Release gives an order's reserved stock back in tx. Releasing twice, or an order never
// reserved, changes no stock; the latter leaves a marker that refuses a late reserve.
func (r *Repo) Release(ctx context.Context, tx pgx.Tx, orderID string) error {
	// Insert first: if a reserve of this order is in flight, this waits for it and then conflicts,
	// so the UPDATE below sees the reservation instead of missing it.
	tag, err := tx.Exec(ctx, `INSERT INTO reservations (order_id, status, released_at) VALUES ($1, 'released', now()) ON CONFLICT (order_id) DO NOTHING`, orderID)
	if err != nil {
		return fmt.Errorf("insert release marker: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	tag, err = tx.Exec(ctx, `UPDATE reservations SET status = 'released', released_at = now() WHERE order_id = $1 AND status = 'reserved'`, orderID)
	if err != nil {
		return fmt.Errorf("mark reservation released: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE products p SET stock = p.stock + i.quantity FROM reservation_items i WHERE i.order_id = $1 AND p.id = i.product_id`, orderID); err != nil {
		return fmt.Errorf("return stock: %w", err)
	}
	return nil
}
