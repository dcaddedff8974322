//go:build contracts

package contracts

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pact-foundation/pact-go/v2/message"
	"github.com/pact-foundation/pact-go/v2/models"

	"github.com/msctl/msctl/services/kit/auth/authtest"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/kit/vault/vaulttest"

	invbroker "github.com/msctl/msctl/services/inventory/adapters/broker"
	invpg "github.com/msctl/msctl/services/inventory/adapters/postgres"
	invapi "github.com/msctl/msctl/services/inventory/api"
	invapp "github.com/msctl/msctl/services/inventory/app"
	invmigrations "github.com/msctl/msctl/services/inventory/migrations"
	notifbroker "github.com/msctl/msctl/services/notifications/adapters/broker"
	notifpg "github.com/msctl/msctl/services/notifications/adapters/postgres"
	notifapi "github.com/msctl/msctl/services/notifications/api"
	notifapp "github.com/msctl/msctl/services/notifications/app"
	notifmigrations "github.com/msctl/msctl/services/notifications/migrations"
	ordersbroker "github.com/msctl/msctl/services/orders/adapters/broker"
	ordersapi "github.com/msctl/msctl/services/orders/api"
	paybroker "github.com/msctl/msctl/services/payments/adapters/broker"
	paypg "github.com/msctl/msctl/services/payments/adapters/postgres"
	payapi "github.com/msctl/msctl/services/payments/api"
	payapp "github.com/msctl/msctl/services/payments/app"
	paymigrations "github.com/msctl/msctl/services/payments/migrations"
)

const declinedCard = "4000000000000002"

// produce adapts a function that makes a service emit a message into a Pact
// message producer.
func produce(fn func(ctx context.Context) ([]byte, error)) message.Handler {
	return func([]models.ProviderState) (message.Body, message.Metadata, error) {
		raw, err := fn(context.Background())
		if err != nil {
			return nil, nil, err
		}
		return jsonMessage(raw)
	}
}

// command wraps data as the bus would deliver it to a participant.
func command(subject string, data any) (bus.Message, error) {
	env, err := events.New(subject, data)
	if err != nil {
		return bus.Message{}, err
	}
	return delivery(mustJSON(env))
}

// setupOnly runs fn on a state's setup and ignores its teardown: every state
// creates fresh rows, so nothing needs undoing.
func setupOnly(fn func(ctx context.Context, s models.ProviderState) (models.ProviderStateResponse, error)) models.StateHandler {
	return func(setup bool, s models.ProviderState) (models.ProviderStateResponse, error) {
		if !setup {
			return nil, nil
		}
		return fn(context.Background(), s)
	}
}

func httpServer(service string) *httpx.Server {
	return httpx.New(httpx.Options{Service: service, Logger: quietLog()})
}

func TestProviderInventory(t *testing.T) {
	db := openDB(t, "inventory", invmigrations.FS)
	inv := invapp.New(db, invpg.New(db))
	handler := invbroker.Handler(db, inv)
	srv := httpServer("inventory")
	invapi.Register(srv.Mux, inv)

	// answer sends inventory a saga command and returns its reply from the outbox.
	answer := func(subject string, data any, orderID, reply string) message.Handler {
		return produce(func(ctx context.Context) ([]byte, error) {
			m, err := command(subject, data)
			if err != nil {
				return nil, err
			}
			if err := handler(ctx, m); err != nil {
				return nil, err
			}
			return outboxMessage(ctx, db, reply, orderID)
		})
	}
	reserved, rejected, released := uuid.NewString(), uuid.NewString(), uuid.NewString()
	verify(t, providerUnderTest{
		Name:    "inventory",
		Handler: srv.Handler(),
		States: models.StateHandlers{
			stateCatalogue: setupOnly(func(ctx context.Context, _ models.ProviderState) (models.ProviderStateResponse, error) {
				// The migrations seed it; make sure they did.
				ps, err := inv.Products(ctx)
				if err == nil && len(ps) == 0 {
					err = errors.New("the catalogue is empty")
				}
				return nil, err
			}),
		},
		Messages: message.Handlers{
			"a stock reserved reply": answer(events.InventoryReserve,
				events.ReserveStock{OrderID: reserved, Items: []events.Item{{ProductID: exampleProduct, Quantity: 1}}}, reserved, events.InventoryReserved),
			"a stock rejected reply": answer(events.InventoryReserve,
				events.ReserveStock{OrderID: rejected, Items: []events.Item{{ProductID: outOfStockItem, Quantity: 1}}}, rejected, events.InventoryRejected),
			"a stock released reply": answer(events.InventoryRelease,
				events.ReleaseStock{OrderID: released, Reason: "payment declined: card declined"}, released, events.InventoryReleased),
		},
	})
}

func TestProviderPayments(t *testing.T) {
	db := openDB(t, "payments", paymigrations.FS)
	cards := vaulttest.New(t)
	pay := payapp.New(paypg.New(db), cards, &payapp.Faults{})
	handler := paybroker.Handler(db, pay)
	srv := httpServer("payments")
	payapi.Register(srv.Mux, pay)

	send := func(ctx context.Context, subject string, data any) error {
		m, err := command(subject, data)
		if err != nil {
			return err
		}
		return handler(ctx, m)
	}
	charge := func(ctx context.Context, orderID, card string) error {
		sealed, err := cards.Seal(card, orderID)
		if err != nil {
			return err
		}
		return send(ctx, events.PaymentsCharge, events.ChargePayment{OrderID: orderID, UserID: exampleUserID, AmountCents: keyboardPrice, Card: sealed})
	}
	chargeReply := func(card, reply string) message.Handler {
		return produce(func(ctx context.Context) ([]byte, error) {
			id := uuid.NewString()
			if err := charge(ctx, id, card); err != nil {
				return nil, err
			}
			return outboxMessage(ctx, db, reply, id)
		})
	}
	verify(t, providerUnderTest{
		Name:    "payments",
		Handler: srv.Handler(),
		States: models.StateHandlers{
			statePayment: setupOnly(func(ctx context.Context, s models.ProviderState) (models.ProviderStateResponse, error) {
				id, err := stateParam(s, "orderId")
				if err != nil {
					return nil, err
				}
				return nil, charge(ctx, id, goodCard)
			}),
		},
		Messages: message.Handlers{
			"a payment charged reply":  chargeReply(goodCard, events.PaymentsCharged),
			"a payment declined reply": chargeReply(declinedCard, events.PaymentsDeclined),
			"a payment refunded reply": produce(func(ctx context.Context) ([]byte, error) {
				id := uuid.NewString()
				if err := charge(ctx, id, goodCard); err != nil {
					return nil, err
				}
				if err := send(ctx, events.PaymentsRefund, events.RefundPayment{OrderID: id, Reason: "payment timed out"}); err != nil {
					return nil, err
				}
				return outboxMessage(ctx, db, events.PaymentsRefunded, id)
			}),
		},
	})
}

func TestProviderNotifications(t *testing.T) {
	db := openDB(t, "notifications", notifmigrations.FS)
	n := notifapp.New(notifpg.New(db))
	handler := notifbroker.Handler(db, n)
	srv := httpServer("notifications")
	notifapi.Register(srv.Mux, authtest.Verifier(), n)

	verify(t, providerUnderTest{
		Name:    "notifications",
		Handler: srv.Handler(),
		States: models.StateHandlers{
			stateNotifications: setupOnly(func(ctx context.Context, s models.ProviderState) (models.ProviderStateResponse, error) {
				orderID, err := stateParam(s, "orderId")
				if err != nil {
					return nil, err
				}
				userID, err := stateParam(s, "userId")
				if err != nil {
					return nil, err
				}
				// Notifications come from the order events only.
				m, err := command(events.OrderConfirmed, events.OrderConfirmedV1{OrderID: orderID, UserID: userID,
					Items:      []events.PricedItem{{ProductID: exampleProduct, Quantity: 1, UnitPriceCents: keyboardPrice}},
					TotalCents: keyboardPrice})
				if err != nil {
					return nil, err
				}
				return customerState(t, userID), handler(ctx, m)
			}),
		},
	})
}

func TestProviderOrders(t *testing.T) {
	o := newOrdersSaga(t)
	srv := httpServer("orders")
	ordersapi.Register(srv.Mux, authtest.Verifier(), o.app, func(context.Context) (int, error) {
		return 0, errors.New("rebuilding the read model needs the bus, which contract tests do not run")
	})
	projector := ordersbroker.ReadModelHandler(o.db, o.app)

	emitted := func(step sagaStep, subject string) message.Handler {
		return produce(func(ctx context.Context) ([]byte, error) {
			ord, err := o.orderAt(ctx, uuid.NewString(), step)
			if err != nil {
				return nil, err
			}
			return outboxMessage(ctx, o.db, subject, ord.ID)
		})
	}
	verify(t, providerUnderTest{
		Name:    "orders",
		Handler: srv.Handler(),
		States: models.StateHandlers{
			stateOrder: setupOnly(func(ctx context.Context, _ models.ProviderState) (models.ProviderStateResponse, error) {
				user := uuid.NewString()
				ord, err := o.place(ctx, user, exampleProduct)
				if err != nil {
					return nil, err
				}
				resp := customerState(t, user)
				resp["id"] = ord.ID
				return resp, nil
			}),
			stateListedOrder: setupOnly(func(ctx context.Context, _ models.ProviderState) (models.ProviderStateResponse, error) {
				user := uuid.NewString()
				ord, err := o.place(ctx, user, exampleProduct)
				if err != nil {
					return nil, err
				}
				// The list is the read model: feed it the order's own created event.
				if err := projectFromOutbox(ctx, o.db, projector, events.OrderCreated, ord.ID); err != nil {
					return nil, err
				}
				return customerState(t, user), nil
			}),
			stateSignedIn: setupOnly(func(context.Context, models.ProviderState) (models.ProviderStateResponse, error) {
				return customerState(t, uuid.NewString()), nil
			}),
		},
		Messages: message.Handlers{
			"a command to reserve stock":    emitted(awaitingStock, events.InventoryReserve),
			"a command to release stock":    emitted(awaitingRelease, events.InventoryRelease),
			"a command to charge a card":    emitted(awaitingCharge, events.PaymentsCharge),
			"a command to refund a payment": emitted(awaitingRefund, events.PaymentsRefund),
			"an order confirmed event":      emitted(confirmed, events.OrderConfirmed),
			"an order cancelled event":      emitted(cancelled, events.OrderCancelled),
		},
	})
}

func projectFromOutbox(ctx context.Context, db *pgxpool.Pool, h bus.Handler, subject, orderID string) error {
	raw, err := outboxMessage(ctx, db, subject, orderID)
	if err != nil {
		return err
	}
	m, err := delivery(raw)
	if err != nil {
		return err
	}
	if err := h(ctx, m); err != nil {
		return fmt.Errorf("project %s: %w", subject, err)
	}
	return nil
}

// customerState is the provider state of a signed-in customer: the user id and
// a bearer token for it, signed like the users service signs them.
func customerState(t *testing.T, user string) models.ProviderStateResponse {
	return models.ProviderStateResponse{"userId": user, "token": authtest.Token(t, user, time.Hour)}
}
