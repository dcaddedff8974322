// Package app holds the orders use cases: placing an order, the saga that
// settles it, and the read model the order list is served from.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/kit/outbox"
	"github.com/msctl/msctl/services/kit/vault"
	"github.com/msctl/msctl/services/orders/domain"
)

// ErrIdempotencyMismatch says an Idempotency-Key was reused for a different request.
var ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")

// Repository stores orders, sagas and the read model. Writes run in the
// caller's transaction.
type Repository interface {
	// CreateOrder inserts o with its saga unless (user, idemKey) names an
	// existing order, which it returns with created false and its request hash.
	CreateOrder(ctx context.Context, tx pgx.Tx, o domain.Order, s domain.Saga, idemKey, requestHash string) (existing domain.Order, existingHash string, created bool, err error)
	Order(ctx context.Context, userID, id string) (domain.Order, error)
	// LockSagas reads the orders and sagas of orderIDs (those that exist)
	// FOR UPDATE, locking them in order id order.
	LockSagas(ctx context.Context, tx pgx.Tx, orderIDs []string) ([]domain.Order, []domain.Saga, error)
	// StuckSagas locks (SKIP LOCKED) up to limit unfinished sagas not updated since before.
	StuckSagas(ctx context.Context, tx pgx.Tx, before time.Time, limit int) ([]domain.Order, []domain.Saga, error)
	// QueueSaveOrder and QueueSaveSaga queue writes on a statement batch,
	// sent in the caller's transaction.
	QueueSaveOrder(b *pgx.Batch, o domain.Order) error
	QueueSaveSaga(b *pgx.Batch, s domain.Saga)

	// QueueUpsertView queues a read-model write on a statement batch.
	QueueUpsertView(b *pgx.Batch, v domain.View) error
	Views(ctx context.Context, userID string, limit int) ([]domain.View, error)
	ClearViews(ctx context.Context, tx pgx.Tx) error
}

// SagaConfig tunes the saga's timeouts.
type SagaConfig struct {
	// StepTimeout is how long a step waits for its reply before the sweeper acts.
	StepTimeout time.Duration
	// MaxAttempts is how often a forward step's command is sent before giving up.
	MaxAttempts int
	// Healthy reports whether orders' own dependencies (its database, the
	// broker, its consumers and outbox relay) are up; the sweeper does not
	// count step time while it fails. nil counts all time.
	Healthy func(context.Context) error
}

// Keys are the secrets orders holds (msctl hands them out, msctl.yaml
// `secrets:`): no card number or unsalted digest of one is ever stored.
type Keys struct {
	// Cards seals card numbers for payments, the only one that opens them.
	Cards *vault.Vault
	// RequestHash salts the request hashes that tell an idempotent retry
	// from a reused key; unsalted, a hash of a few items and a card number
	// could be reversed by trying card numbers.
	RequestHash []byte
}

// App implements the use cases.
type App struct {
	db   *pgxpool.Pool
	repo Repository
	saga SagaConfig
	keys Keys
	log  *slog.Logger
	now  func() time.Time
}

// New builds the App.
func New(db *pgxpool.Pool, repo Repository, saga SagaConfig, keys Keys, log *slog.Logger) *App {
	return &App{db: db, repo: repo, saga: saga, keys: keys, log: log, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
}

// Place accepts an order and starts its saga: the order row, the saga row,
// the reserve command and the OrderCreated event commit together. With an
// idempotency key, a repeated request returns the first order (created false).
func (a *App) Place(ctx context.Context, userID, idemKey string, items []domain.Item, card string) (domain.Order, bool, error) {
	if err := domain.Validate(userID, items, card, idemKey); err != nil {
		return domain.Order{}, false, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return domain.Order{}, false, fmt.Errorf("order id: %w", err)
	}
	now := a.now()
	lines := make([]domain.Item, len(items))
	for i, it := range items {
		lines[i] = domain.Item{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	o := domain.Order{ID: id.String(), UserID: userID, Status: domain.StatusPending, Items: lines, CreatedAt: now, UpdatedAt: now}
	sealed, err := a.keys.Cards.Seal(card, o.ID)
	if err != nil {
		return domain.Order{}, false, err
	}
	s := domain.Saga{OrderID: o.ID, Step: domain.StepReserve, Card: sealed, Attempts: 1, UpdatedAt: now}
	hash := a.requestHash(lines, card)

	var out domain.Order
	var created bool
	err = pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		existing, existingHash, ok, err := a.repo.CreateOrder(ctx, tx, o, s, idemKey, hash)
		if err != nil {
			return err
		}
		if !ok {
			if existingHash != hash {
				return ErrIdempotencyMismatch
			}
			out, created = existing, false
			return nil
		}
		var b pgx.Batch
		if err := a.queueSend(ctx, &b, o, s); err != nil {
			return err
		}
		if _, err := outbox.Queue(ctx, &b, createdSubject, createdEvent(o)); err != nil {
			return err
		}
		out, created = o, true
		return sendBatch(ctx, tx, &b)
	})
	if err != nil {
		return domain.Order{}, false, err
	}
	outbox.Wake()
	return out, created, nil
}

// Order returns the caller's order from the write model.
func (a *App) Order(ctx context.Context, userID, id string) (domain.Order, error) {
	return a.repo.Order(ctx, userID, id)
}

// requestHash identifies a request's content, to tell a retry (same
// content) from a reused key (different content). It is an HMAC under the
// service's own key, so the stored hash reveals nothing about the card.
func (a *App) requestHash(items []domain.Item, card string) string {
	raw, _ := json.Marshal(struct {
		Items []domain.Item
		Card  string
	}{items, card})
	mac := hmac.New(sha256.New, a.keys.RequestHash)
	mac.Write(raw)
	return hex.EncodeToString(mac.Sum(nil))
}

// sendBatch sends the queued statements of b in tx, in one round trip.
func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write batch: %w", err)
	}
	return nil
}
