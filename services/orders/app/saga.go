package app

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/fault"
	"github.com/msctl/msctl/services/kit/outbox"
	"github.com/msctl/msctl/services/kit/vault"
	"github.com/msctl/msctl/services/orders/domain"
)

const createdSubject = events.OrderCreated

// HandleReply advances an order's saga on a participant's reply, inside the
// consumer's transaction (which also holds the inbox record). Replies the
// current step does not wait for are ignored.
func (a *App) HandleReply(ctx context.Context, tx pgx.Tx, payload any) error {
	return a.HandleReplies(ctx, tx, []bus.Message{{Payload: payload}})
}

// HandleReplies is HandleReply for a batch of replies, in their order. One
// query locks every saga concerned (in order id order, so that concurrent
// batches wait for each other rather than deadlock), and the changes and
// the messages they send go to the database as one batch of statements: a
// batch costs a few round trips whatever its size.
func (a *App) HandleReplies(ctx context.Context, tx pgx.Tx, ms []bus.Message) error {
	type reply struct {
		ctx     context.Context
		orderID string
		reply   domain.Reply
		reason  string
		payload any
	}
	replies := make([]reply, len(ms))
	ids := make([]string, len(ms))
	for i, m := range ms {
		orderID, r, reason, err := classify(m.Payload)
		if err != nil {
			return bus.Permanent(err)
		}
		replies[i] = reply{ctx: m.Context(ctx), orderID: orderID, reply: r, reason: reason, payload: m.Payload}
		ids[i] = orderID
	}
	orders, sagas, err := a.repo.LockSagas(ctx, tx, ids)
	if err != nil {
		return err
	}
	type state struct {
		o       domain.Order
		s       domain.Saga
		changed bool
	}
	states := make(map[string]*state, len(orders))
	for i := range orders {
		states[orders[i].ID] = &state{o: orders[i], s: sagas[i]}
	}
	var b pgx.Batch
	for _, r := range replies {
		st, ok := states[r.orderID]
		if !ok {
			return bus.Permanent(fmt.Errorf("reply %s for unknown order %s", r.reply, r.orderID))
		}
		t, ok := domain.On(st.s.Step, r.reply, r.reason)
		if !ok {
			a.log.DebugContext(r.ctx, "reply ignored", "order_id", r.orderID, "step", st.s.Step, "reply", r.reply)
			continue
		}
		if reserved, isReserved := r.payload.(*events.StockReserved); isReserved {
			price(&st.o, reserved.Items)
		}
		a.step(&st.o, &st.s, t)
		st.changed = true
		if err := a.queueSend(r.ctx, &b, st.o, st.s); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(states)) {
		if st := states[id]; st.changed {
			if err := a.queueSave(&b, st.o, st.s); err != nil {
				return err
			}
		}
	}
	return sendBatch(ctx, tx, &b)
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

// step applies t to the saga and its order in memory.
func (a *App) step(o *domain.Order, s *domain.Saga, t domain.Transition) {
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
		s.Card = "" // nothing left to charge
	}
}

// queueSave queues the writes of a saga and its order on b.
func (a *App) queueSave(b *pgx.Batch, o domain.Order, s domain.Saga) error {
	a.repo.QueueSaveSaga(b, s)
	return a.repo.QueueSaveOrder(b, o)
}

// queueSend queues on b the message the saga's current step calls for.
func (a *App) queueSend(ctx context.Context, b *pgx.Batch, o domain.Order, s domain.Saga) error {
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
		cmd, err := a.chargeCommand(o, s)
		if err != nil {
			return err
		}
		subject, data = events.PaymentsCharge, cmd
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
	_, err := outbox.Queue(ctx, b, subject, data)
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
		var b pgx.Batch
		for i, s := range sagas {
			o := orders[i]
			t, resend := domain.OnTimeout(s.Step, s.Attempts, a.saga.MaxAttempts)
			a.log.WarnContext(ctx, "saga step timed out", "order_id", s.OrderID, "step", s.Step, "attempts", s.Attempts, "resend", resend, "next", t.Next)
			a.step(&o, &s, t)
			if err := a.queueSend(ctx, &b, o, s); err != nil {
				return err
			}
			if err := a.queueSave(&b, o, s); err != nil {
				return err
			}
		}
		n = len(sagas)
		return sendBatch(ctx, tx, &b)
	})
	if n > 0 && err == nil {
		outbox.Wake()
	}
	return n, err
}

// RunSweeper sweeps every quarter StepTimeout until ctx ends. A step's
// timeout counts only time during which orders' own dependencies were up
// (SagaConfig.Healthy): while its database or the broker is down, replies
// can neither arrive nor be handled and re-sent commands cannot leave, so
// the sweeper does nothing; once they are back it lets a full StepTimeout
// pass before sweeping again, so that the replies the outage held up are
// handled before a step is re-sent or given up.
func (a *App) RunSweeper(ctx context.Context) error {
	t := time.NewTicker(max(a.saga.StepTimeout/4, 100*time.Millisecond))
	defer t.Stop()
	down := fault.NewOutage(a.log, "saga sweeper")
	upSince := time.Now() // a start is the end of an outage too
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := a.healthy(ctx); err != nil {
			down.Fail(err)
			upSince = time.Time{}
			continue
		}
		if upSince.IsZero() {
			upSince = time.Now()
		}
		if time.Since(upSince) < a.saga.StepTimeout {
			continue
		}
		for {
			n, err := a.Sweep(ctx)
			switch {
			case err == nil:
				down.OK()
			case ctx.Err() != nil:
				return nil
			case fault.Transient(err):
				down.Fail(err)
				upSince = time.Time{}
			default:
				a.log.Warn("saga sweep failed", "err", err)
			}
			if err != nil || n < sweepBatch {
				break
			}
		}
	}
}

// healthy is SagaConfig.Healthy, nil when none was given.
func (a *App) healthy(ctx context.Context) error {
	if a.saga.Healthy == nil {
		return nil
	}
	return a.saga.Healthy(ctx)
}

// chargeCommand asks payments to charge the saga's sealed card. A saga
// stored before cards were sealed holds the number itself: it is sealed
// here, so that it never reaches the outbox or the stream in clear.
func (a *App) chargeCommand(o domain.Order, s domain.Saga) (events.ChargePayment, error) {
	card := s.Card
	if !vault.Sealed(card) {
		var err error
		if card, err = a.keys.Cards.Seal(card, o.ID); err != nil {
			return events.ChargePayment{}, err
		}
	}
	return events.ChargePayment{OrderID: o.ID, UserID: o.UserID, AmountCents: o.TotalCents, Card: card}, nil
}
