//go:build contracts

package contracts

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	match "github.com/pact-foundation/pact-go/v2/matchers"
	msgv4 "github.com/pact-foundation/pact-go/v2/message/v4"

	invbroker "github.com/msctl/msctl/services/inventory/adapters/broker"
	invpg "github.com/msctl/msctl/services/inventory/adapters/postgres"
	invapp "github.com/msctl/msctl/services/inventory/app"
	invmigrations "github.com/msctl/msctl/services/inventory/migrations"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/vault/vaulttest"
	notifbroker "github.com/msctl/msctl/services/notifications/adapters/broker"
	notifpg "github.com/msctl/msctl/services/notifications/adapters/postgres"
	notifapp "github.com/msctl/msctl/services/notifications/app"
	notifdomain "github.com/msctl/msctl/services/notifications/domain"
	notifmigrations "github.com/msctl/msctl/services/notifications/migrations"
	paybroker "github.com/msctl/msctl/services/payments/adapters/broker"
	paypg "github.com/msctl/msctl/services/payments/adapters/postgres"
	payapp "github.com/msctl/msctl/services/payments/app"
	paymigrations "github.com/msctl/msctl/services/payments/migrations"
)

// envelope is the wire shape of every event (kit/events.Envelope) around data.
// Each example gets an id of its own: consumers absorb a repeated id as a
// duplicate.
func envelope(subject string, data match.StructMatcher) match.Map {
	return match.Map{
		"id":          match.Regex(uuid.NewString(), uuidRegexp),
		"subject":     match.S(subject),
		"version":     match.Equality(1),
		"occurred_at": timestamp(),
		"data":        data,
	}
}

func pricedItems(product string) match.Matcher {
	return match.EachLike(match.Map{
		"product_id":       match.Like(product),
		"quantity":         match.Integer(1),
		"unit_price_cents": match.Integer(int(keyboardPrice)),
	}, 1)
}

// expectMessage records that consumer receives content and proves it by
// handing the example message to consume, the consumer's real handler.
func expectMessage(t *testing.T, p *msgv4.AsynchronousPact, description string, content match.Map, consume func(ctx context.Context, raw []byte) error) {
	t.Helper()
	err := p.AddAsynchronousMessage().
		ExpectsToReceive(description).
		WithJSONContent(content).
		ConsumedBy(func(m msgv4.AsynchronousMessage) error { return consume(context.Background(), m.Contents) }).
		Verify(t)
	if err != nil {
		t.Fatalf("%s: %v", description, err)
	}
}

// TestConsumerInventoryOrders: inventory consumes the saga's stock commands
// with its real bus handler and answers through its outbox.
func TestConsumerInventoryOrders(t *testing.T) {
	db := openDB(t, "inventory", invmigrations.FS)
	handler := invbroker.Handler(db, invapp.New(db, invpg.New(db)))
	p := messagePact(t, "inventory", "orders")
	expectMessage(t, p, "a command to reserve stock", envelope(events.InventoryReserve, match.StructMatcher{
		"order_id": match.Regex(exampleOrderID, uuidRegexp),
		"items":    match.EachLike(match.Map{"product_id": match.Like(exampleProduct), "quantity": match.Integer(1)}, 1),
	}), handled(handler, repliedWith(db, events.InventoryReserved)))
	expectMessage(t, p, "a command to release stock", envelope(events.InventoryRelease, match.StructMatcher{
		"order_id": match.Regex(exampleOrderID, uuidRegexp),
		"reason":   match.Like("payment declined: card declined"),
	}), handled(handler, repliedWith(db, events.InventoryReleased)))
}

// TestConsumerPaymentsOrders: payments consumes the saga's charge and refund
// commands with its real bus handler.
func TestConsumerPaymentsOrders(t *testing.T) {
	db := openDB(t, "payments", paymigrations.FS)
	cards := vaulttest.New(t)
	handler := paybroker.Handler(db, payapp.New(paypg.New(db), cards, &payapp.Faults{}))
	p := messagePact(t, "payments", "orders")
	// The card travels sealed, bound to the order: the example is sealed
	// for the example order, and any sealed value matches.
	card, err := cards.Seal(goodCard, exampleOrderID)
	if err != nil {
		t.Fatal(err)
	}
	expectMessage(t, p, "a command to charge a card", envelope(events.PaymentsCharge, match.StructMatcher{
		"order_id":     match.Regex(exampleOrderID, uuidRegexp),
		"user_id":      match.Like(exampleUserID),
		"amount_cents": match.Integer(int(keyboardPrice)),
		"card":         match.Regex(card, `^v1\.[A-Za-z0-9_-]+$`),
	}), handled(handler, repliedWith(db, events.PaymentsCharged)))
	expectMessage(t, p, "a command to refund a payment", envelope(events.PaymentsRefund, match.StructMatcher{
		"order_id": match.Regex(exampleOrderID, uuidRegexp),
		"reason":   match.Like("payment timed out"),
	}), handled(handler, repliedWith(db, events.PaymentsRefunded)))
}

// TestConsumerNotificationsOrders: notifications turns the order outcome
// events into a notification with its real bus handler.
func TestConsumerNotificationsOrders(t *testing.T) {
	db := openDB(t, "notifications", notifmigrations.FS)
	a := notifapp.New(notifpg.New(db))
	handler := notifbroker.Handler(db, a)
	consume := func(kind string) func(context.Context, []byte) error {
		return handled(handler, func(ctx context.Context) error {
			ns, err := a.List(ctx, exampleUserID, exampleOrderID)
			if err != nil {
				return err
			}
			for _, n := range ns {
				if n.Kind == kind {
					return nil
				}
			}
			return fmt.Errorf("no %s notification after the event: %+v", kind, ns)
		})
	}
	p := messagePact(t, "notifications", "orders")
	expectMessage(t, p, "an order confirmed event", envelope(events.OrderConfirmed, match.StructMatcher{
		"order_id":    match.Regex(exampleOrderID, uuidRegexp),
		"user_id":     match.Like(exampleUserID),
		"items":       pricedItems(exampleProduct),
		"total_cents": match.Integer(int(keyboardPrice)),
		"created_at":  timestamp(),
	}), consume(notifdomain.KindOrderConfirmed))
	expectMessage(t, p, "an order cancelled event", envelope(events.OrderCancelled, match.StructMatcher{
		"order_id":    match.Regex(exampleOrderID, uuidRegexp),
		"user_id":     match.Like(exampleUserID),
		"items":       pricedItems(outOfStockItem),
		"total_cents": match.Integer(0),
		"reason":      match.Like("insufficient stock for " + outOfStockItem),
		"created_at":  timestamp(),
	}), consume(notifdomain.KindOrderCancelled))
}

// TestConsumerOrdersReplies: the saga consumes the replies of inventory and
// payments with its real bus handler. Each reply is about an order the test
// first walked to the step that waits for it, so the example order id is that
// order's.
func TestConsumerOrdersReplies(t *testing.T) {
	o := newOrdersSaga(t)
	ctx := context.Background()
	inventory := messagePact(t, "orders", "inventory")
	payments := messagePact(t, "orders", "payments")
	cases := []struct {
		pact    *msgv4.AsynchronousPact
		desc    string
		at      sagaStep
		subject string
		data    func(orderID string) match.StructMatcher
		next    string // what the saga must send next
	}{
		{inventory, "a stock reserved reply", awaitingStock, events.InventoryReserved, func(id string) match.StructMatcher {
			return match.StructMatcher{"order_id": match.Regex(id, uuidRegexp), "items": pricedItems(exampleProduct)}
		}, events.PaymentsCharge},
		{inventory, "a stock rejected reply", awaitingStock, events.InventoryRejected, func(id string) match.StructMatcher {
			return match.StructMatcher{"order_id": match.Regex(id, uuidRegexp), "reason": match.Like("insufficient stock for " + outOfStockItem)}
		}, events.OrderCancelled},
		{inventory, "a stock released reply", awaitingRelease, events.InventoryReleased, func(id string) match.StructMatcher {
			return match.StructMatcher{"order_id": match.Regex(id, uuidRegexp)}
		}, events.OrderCancelled},
		{payments, "a payment charged reply", awaitingCharge, events.PaymentsCharged, func(id string) match.StructMatcher {
			return match.StructMatcher{"order_id": match.Regex(id, uuidRegexp), "amount_cents": match.Integer(int(keyboardPrice))}
		}, events.OrderConfirmed},
		{payments, "a payment declined reply", awaitingCharge, events.PaymentsDeclined, func(id string) match.StructMatcher {
			return match.StructMatcher{
				"order_id": match.Regex(id, uuidRegexp),
				"code":     match.Regex(events.DeclineCardDeclined, `^(card_declined|processing_error|order_cancelled)$`),
				"reason":   match.Like("card declined"),
			}
		}, events.InventoryRelease},
		{payments, "a payment refunded reply", awaitingRefund, events.PaymentsRefunded, func(id string) match.StructMatcher {
			return match.StructMatcher{"order_id": match.Regex(id, uuidRegexp), "amount_cents": match.Integer(0)}
		}, events.InventoryRelease},
	}
	for _, c := range cases {
		ord, err := o.orderAt(ctx, exampleUserID, c.at)
		if err != nil {
			t.Fatalf("%s: set up order: %v", c.desc, err)
		}
		expectMessage(t, c.pact, c.desc, envelope(c.subject, c.data(ord.ID)), func(ctx context.Context, raw []byte) error {
			if err := o.handle(ctx, raw); err != nil {
				return err
			}
			_, err := outboxMessage(ctx, o.db, c.next, ord.ID)
			return err
		})
	}
}
