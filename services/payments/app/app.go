// Package app holds the payments use cases: charge and refund, once per
// order, answering each command with a reply event that they add to the
// outbox themselves, in the caller's transaction (the app layer is the one
// that writes the outbox in every service).
package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/outbox"
	"github.com/msctl/msctl/services/kit/vault"
	"github.com/msctl/msctl/services/payments/domain"
)

// ErrNotFound says there is no payment for the order.
var ErrNotFound = errors.New("payment not found")

// Repository stores payments. Writes run in the caller's transaction.
type Repository interface {
	// Insert adds p unless the order already has a payment; it reports whether it did.
	Insert(ctx context.Context, tx pgx.Tx, p domain.Payment) (bool, error)
	// Lock returns the order's payment locked for update, or ErrNotFound.
	Lock(ctx context.Context, tx pgx.Tx, orderID string) (domain.Payment, error)
	SetStatus(ctx context.Context, tx pgx.Tx, orderID, status string) error
	Get(ctx context.Context, orderID string) (domain.Payment, error)
}

// reply is the event answering a command.
type reply struct {
	subject string
	data    any
}

// answer queues r on replies, the outbox batch the caller sends in its transaction.
func answer(ctx context.Context, replies *pgx.Batch, r reply) error {
	_, err := outbox.Queue(ctx, replies, r.subject, r.data)
	return err
}

// App implements the use cases.
type App struct {
	repo   Repository
	cards  *vault.Vault
	faults *Faults
}

// New builds the App. cards opens the card numbers orders seals; payments
// keeps only their last four digits.
func New(repo Repository, cards *vault.Vault, faults *Faults) *App {
	return &App{repo: repo, cards: cards, faults: faults}
}

// Faults is the runtime fault knob.
func (a *App) Faults() *Faults { return a.faults }

// Charge charges an order once in tx and queues the reply on replies. A
// repeated command answers from the stored payment, so the reply is the same
// however often the command arrives.
func (a *App) Charge(ctx context.Context, tx pgx.Tx, replies *pgx.Batch, cmd events.ChargePayment) error {
	if err := a.faults.Inject(ctx); err != nil {
		return fmt.Errorf("charge %s: %w", cmd.OrderID, err)
	}
	card, err := a.cards.Open(cmd.Card, cmd.OrderID)
	if err != nil {
		// Another key sealed it (orders and payments disagree on the
		// card-vault secret) or it was altered: no attempt will open it.
		// Parked, it can be replayed once the keys agree again.
		return bus.Permanent(fmt.Errorf("charge %s: card: %w", cmd.OrderID, err))
	}
	out := domain.Authorize(card, cmd.AmountCents)
	p := domain.Payment{
		OrderID: cmd.OrderID, UserID: cmd.UserID, Status: out.Status,
		AmountCents: cmd.AmountCents, CardLast4: domain.Last4(card), Reason: out.Reason,
	}
	inserted, err := a.repo.Insert(ctx, tx, p)
	if err != nil {
		return err
	}
	if !inserted {
		// A charge for this order exists already: answer with what it decided.
		if p, err = a.repo.Lock(ctx, tx, cmd.OrderID); err != nil {
			return err
		}
	}
	return answer(ctx, replies, chargeReply(p))
}

func chargeReply(p domain.Payment) reply {
	switch p.Status {
	case domain.StatusCharged:
		return reply{events.PaymentsCharged, events.PaymentCharged{OrderID: p.OrderID, AmountCents: p.AmountCents}}
	case domain.StatusDeclined:
		return reply{events.PaymentsDeclined, events.PaymentDeclined{OrderID: p.OrderID, Code: events.DeclineCardDeclined, Reason: p.Reason}}
	case domain.StatusFailed:
		return reply{events.PaymentsDeclined, events.PaymentDeclined{OrderID: p.OrderID, Code: events.DeclineProcessing, Reason: p.Reason}}
	default: // refunded or voided: the order was given up before this charge
		return reply{events.PaymentsDeclined, events.PaymentDeclined{OrderID: p.OrderID, Code: events.DeclineOrderCancelled, Reason: "order already cancelled"}}
	}
}

// Refund gives back an order's charge in tx and queues the reply on
// replies. Refunding an order never charged voids it, so a charge command
// still in flight is declined afterwards.
func (a *App) Refund(ctx context.Context, tx pgx.Tx, replies *pgx.Batch, cmd events.RefundPayment) error {
	if err := a.faults.Inject(ctx); err != nil {
		return fmt.Errorf("refund %s: %w", cmd.OrderID, err)
	}
	void := domain.Payment{OrderID: cmd.OrderID, Status: domain.StatusVoided, Reason: cmd.Reason}
	inserted, err := a.repo.Insert(ctx, tx, void)
	if err != nil {
		return err
	}
	refunded := events.PaymentRefunded{OrderID: cmd.OrderID}
	if inserted {
		return answer(ctx, replies, reply{events.PaymentsRefunded, refunded})
	}
	p, err := a.repo.Lock(ctx, tx, cmd.OrderID)
	if err != nil {
		return err
	}
	switch p.Status {
	case domain.StatusCharged:
		if err := a.repo.SetStatus(ctx, tx, cmd.OrderID, domain.StatusRefunded); err != nil {
			return err
		}
		refunded.AmountCents = p.AmountCents
	case domain.StatusRefunded:
		refunded.AmountCents = p.AmountCents
	}
	return answer(ctx, replies, reply{events.PaymentsRefunded, refunded})
}

// Payment returns the order's payment or ErrNotFound.
func (a *App) Payment(ctx context.Context, orderID string) (domain.Payment, error) {
	if err := a.faults.Inject(ctx); err != nil {
		return domain.Payment{}, err
	}
	return a.repo.Get(ctx, orderID)
}
