package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/outbox"
	"github.com/msctl/msctl/services/orders/domain"
)

const createdSubject = events.OrderCreated

// HandleReply advances an order's saga on a participant's reply, inside the
// consumer's transaction (which also holds the inbox record). Replies the
// current step does not wait for are ignored.
func (a *App) HandleReply(ctx context.Context, tx pgx.Tx, payload any) error {
	orderID, reply, reason, err := classify(payload)
	if err != nil {
		return bus.Permanent(err)
	}
	o, s, err := a.repo.LockSaga(ctx, tx, orderID)
	if errors.Is(err, domain.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("reply %s for unknown order %s", reply, orderID))
	}
	if err != nil {
		return err
	}
	t, ok := domain.On(s.Step, reply, reason)
	if !ok {
		a.log.DebugContext(ctx, "reply ignored", "order_id", orderID, "step", s.Step, "reply", reply)
		return nil
	}
	if r, isReserved := payload.(*events.StockReserved); isReserved {
		price(&o, r.Items)
	}
	return a.advance(ctx, tx, o, s, t)
}

// classify maps a reply payload to the saga's vocabulary.
func classify(payload any) (orderID string, r domain.Reply, reason string, err error) {
	switch p := payload.(type) {
	case *events.StockReserved:
		return p.OrderID, domain.Reserved, "", nil
	case *events.StockRejected:
		return p.OrderID, domain.Rejected, p.Reason, nil
	case *events.StockReleased:
		return p.OrderID, domain.Released, "", nil
	case *events.PaymentCharged:
		return p.OrderID, domain.Charged, "", nil
	case *events.PaymentDeclined:
		if p.Code == events.DeclineProcessing {
			return p.OrderID, domain.Declined, "payment failed: " + p.Reason, nil
		}
		return p.OrderID, domain.Declined, "payment declined: " + p.Reason, nil
	case *events.PaymentRefunded:
		return p.OrderID, domain.Refunded, "", nil
	}
	return "", "", "", fmt.Errorf("orders does not handle %T", payload)
}

// price sets the unit prices inventory reserved at and the order total.
func price(o *domain.Order, priced []events.PricedItem) {
	prices := make(map[string]int64, len(priced))
	for _, p := range priced {
		prices[p.ProductID] = p.UnitPriceCents
	}
	o.TotalCents = 0
	for i, it := range o.Items {
		p := prices[it.ProductID]
		o.Items[i].UnitPriceCents = &p
		o.TotalCents += p * int64(it.Quantity)
	}
}

// advance applies t to the saga: it persists the new step, sends the
// step's command (or, when done, the order's outcome event) through the
// outbox, all in tx.
func (a *App) advance(ctx context.Context, tx pgx.Tx, o domain.Order, s domain.Saga, t domain.Transition) error {
	now := a.now()
	if t.Reason != "" {
		s.Reason = t.Reason
	}
	if t.Next == s.Step {
		s.Attempts++
	} else {
		s.Step, s.Attempts = t.Next, 1
	}
	s.UpdatedAt = now
	o.UpdatedAt = now
	if t.Next == domain.StepDone {
		o.Status = t.Final
		if t.Final == domain.StatusCancelled {
			o.Reason = s.Reason
		}
		s.CardNumber = "" // nothing left to charge
	}
	if err := a.repo.SaveSaga(ctx, tx, s); err != nil {
		return err
	}
	if err := a.repo.SaveOrder(ctx, tx, o); err != nil {
		return err
	}
	return a.send(ctx, tx, o, s)
}

// send writes the message the saga's current step calls for.
func (a *App) send(ctx context.Context, tx pgx.Tx, o domain.Order, s domain.Saga) error {
	var subject string
	var data any
	switch s.Step {
	case domain.StepReserve:
		items := make([]events.Item, len(o.Items))
		for i, it := range o.Items {
			items[i] = events.Item{ProductID: it.ProductID, Quantity: it.Quantity}
		}
		subject, data = events.InventoryReserve, events.ReserveStock{OrderID: o.ID, Items: items}
	case domain.StepCharge:
		subject, data = events.PaymentsCharge, events.ChargePayment{OrderID: o.ID, UserID: o.UserID, AmountCents: o.TotalCents, CardNumber: s.CardNumber}
	case domain.StepRefund:
		subject, data = events.PaymentsRefund, events.RefundPayment{OrderID: o.ID, Reason: s.Reason}
	case domain.StepRelease:
		subject, data = events.InventoryRelease, events.ReleaseStock{OrderID: o.ID, Reason: s.Reason}
	case domain.StepDone:
		if o.Status == domain.StatusConfirmed {
			subject, data = events.OrderConfirmed, events.OrderConfirmedV1{OrderID: o.ID, UserID: o.UserID, Items: pricedItems(o), TotalCents: o.TotalCents, CreatedAt: o.CreatedAt}
		} else {
			subject, data = events.OrderCancelled, events.OrderCancelledV1{OrderID: o.ID, UserID: o.UserID, Items: pricedItems(o), TotalCents: o.TotalCents, Reason: o.Reason, CreatedAt: o.CreatedAt}
		}
	default:
		return fmt.Errorf("saga of %s: unknown step %q", o.ID, s.Step)
	}
	_, err := outbox.Add(ctx, tx, subject, data)
	return err
}

func pricedItems(o domain.Order) []events.PricedItem {
	out := make([]events.PricedItem, len(o.Items))
	for i, it := range o.Items {
		out[i] = events.PricedItem{ProductID: it.ProductID, Quantity: it.Quantity}
		if it.UnitPriceCents != nil {
			out[i].UnitPriceCents = *it.UnitPriceCents
		}
	}
	return out
}

func createdEvent(o domain.Order) events.OrderCreatedV1 {
	items := make([]events.Item, len(o.Items))
	for i, it := range o.Items {
		items[i] = events.Item{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	return events.OrderCreatedV1{OrderID: o.ID, UserID: o.UserID, Items: items, CreatedAt: o.CreatedAt}
}

// sweepBatch bounds the sagas one sweep handles in one transaction.
const sweepBatch = 100

// Sweep acts on sagas whose step got no reply within StepTimeout: it sends
// the step's command again or gives up and compensates (domain.OnTimeout).
// Re-sent commands carry a new message id; participants are idempotent per
// order, so a command that did arrive is answered the same way again.
func (a *App) Sweep(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		orders, sagas, err := a.repo.StuckSagas(ctx, tx, a.now().Add(-a.saga.StepTimeout), sweepBatch)
		if err != nil {
			return err
		}
		for i, s := range sagas {
			t, resend := domain.OnTimeout(s.Step, s.Attempts, a.saga.MaxAttempts)
			a.log.WarnContext(ctx, "saga step timed out", "order_id", s.OrderID, "step", s.Step, "attempts", s.Attempts, "resend", resend, "next", t.Next)
			if err := a.advance(ctx, tx, orders[i], s, t); err != nil {
				return err
			}
		}
		n = len(sagas)
		return nil
	})
	if n > 0 && err == nil {
		outbox.Wake()
	}
	return n, err
}

// RunSweeper sweeps every quarter StepTimeout until ctx ends.
func (a *App) RunSweeper(ctx context.Context) error {
	t := time.NewTicker(max(a.saga.StepTimeout/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			n, err := a.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				a.log.Warn("saga sweep failed", "err", err)
			}
			if err != nil || n < sweepBatch {
				break
			}
		}
	}
}
