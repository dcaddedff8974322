//go:build contracts

package contracts

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/pact-foundation/pact-go/v2/consumer"
	match "github.com/pact-foundation/pact-go/v2/matchers"
	"github.com/pact-foundation/pact-go/v2/models"

	"github.com/msctl/msctl/services/gateway/summary"
)

// Provider states of inventory, orders, payments and notifications the
// gateway's interactions name.
const (
	stateCatalogue     = "the catalogue is seeded"
	stateOrder         = "a customer has placed an order"
	stateListedOrder   = "a customer's order is in the order list"
	statePayment       = "an order has a charged payment"
	stateNotifications = "a customer was notified about an order"
	stateSignedIn      = "a customer is signed in"
)

func orderBody() match.Map {
	return match.Map{
		"id":          match.Regex(exampleOrderID, uuidRegexp),
		"user_id":     match.Like(exampleUserID),
		"status":      match.Regex("PENDING", `^(PENDING|CONFIRMED|CANCELLED)$`),
		"items":       match.EachLike(match.Map{"product_id": match.Like(exampleProduct), "quantity": match.Integer(1)}, 1),
		"total_cents": match.Integer(8900),
		"created_at":  timestamp(),
	}
}

// addOrderLookup is the request both the proxy and the summary make for one order.
func addOrderLookup(p *consumer.V4HTTPMockProvider) {
	p.AddInteraction().
		Given(stateOrder).
		UponReceiving("a request for one of the caller's orders").
		WithRequestPathMatcher(http.MethodGet, fromState("/api/v1/orders/${id}", "/api/v1/orders/"+exampleOrderID, `^/api/v1/orders/[0-9a-f-]{36}$`),
			func(b *consumer.V4RequestBuilder) {
				b.Header("Authorization", customerToken())
			}).
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) { b.JSONBody(orderBody()) })
}

// customerToken is the customer's bearer token as the gateway forwards it:
// the provider state signs one for the customer it set up, and the service
// verifies it itself (it trusts no header that only names a user).
func customerToken() match.Matcher {
	return fromState("Bearer ${token}", "Bearer "+exampleToken, `^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
}

func notificationsBody() match.Matcher {
	return match.EachLike(match.Map{
		"id":         match.Regex("6f1c1a52-3f57-4c1e-a2a8-3b8a2f0c9d11", uuidRegexp),
		"order_id":   match.Like(exampleOrderID),
		"kind":       match.Regex("order_confirmed", `^(order_confirmed|order_cancelled)$`),
		"message":    match.Like("Your order is confirmed: $89.00 charged."),
		"created_at": timestamp(),
	}, 1)
}

func notificationsState() models.ProviderState {
	return models.ProviderState{Name: stateNotifications, Parameters: map[string]any{"orderId": exampleOrderID, "userId": exampleUserID}}
}

func TestConsumerGatewayInventory(t *testing.T) {
	p := httpPact(t, "gateway", "inventory")
	p.AddInteraction().
		Given(stateCatalogue).
		UponReceiving("a request for the catalogue").
		WithRequest(http.MethodGet, "/api/v1/products").
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) {
			b.JSONBody(match.EachLike(match.Map{
				"id":          match.Regex(exampleProduct, uuidRegexp),
				"sku":         match.Like("KB-001"),
				"name":        match.Like("Mechanical keyboard"),
				"price_cents": match.Integer(8900),
				"stock":       match.Integer(50),
			}, 1))
		})
	err := p.ExecuteTest(t, func(m consumer.MockServerConfig) error {
		g := newGateway(t, map[string]consumer.MockServerConfig{"inventory": m})
		rec := g.do(http.MethodGet, "/api/v1/products", "")
		if err := wantStatus(t, rec, http.StatusOK); err != nil {
			return err
		}
		var products []map[string]any
		decodeBody(t, rec.Body, &products)
		if len(products) == 0 {
			return fmt.Errorf("no products in %s", rec.Body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConsumerGatewayOrders(t *testing.T) {
	p := httpPact(t, "gateway", "orders")
	p.AddInteraction().
		Given(stateSignedIn).
		UponReceiving("a request to place an order").
		WithRequest(http.MethodPost, "/api/v1/orders", func(b *consumer.V4RequestBuilder) {
			b.Header("Content-Type", match.S("application/json")).
				Header("Authorization", customerToken()).
				JSONBody(match.Map{
					"items":       match.EachLike(match.Map{"product_id": match.Like(exampleProduct), "quantity": match.Integer(1)}, 1),
					"card_number": match.Regex("4242424242424242", `^[0-9]{12,19}$`),
				})
		}).
		WillRespondWith(http.StatusAccepted, func(b *consumer.V4ResponseBuilder) {
			b.JSONBody(match.Map{"id": match.Regex(exampleOrderID, uuidRegexp), "status": match.S("PENDING")})
		})
	addOrderLookup(p)
	p.AddInteraction().
		Given(stateListedOrder).
		UponReceiving("a request for the caller's order list").
		WithRequest(http.MethodGet, "/api/v1/orders", func(b *consumer.V4RequestBuilder) {
			b.Header("Authorization", customerToken())
		}).
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) { b.JSONBody(match.EachLike(orderBody(), 1)) })

	err := p.ExecuteTest(t, func(m consumer.MockServerConfig) error {
		g := newGateway(t, map[string]consumer.MockServerConfig{"orders": m})
		rec := g.do(http.MethodPost, "/api/v1/orders", fmt.Sprintf(`{"items":[{"product_id":%q,"quantity":1}],"card_number":"4242424242424242"}`, exampleProduct))
		if err := wantStatus(t, rec, http.StatusAccepted); err != nil {
			return err
		}
		if err := wantStatus(t, g.do(http.MethodGet, "/api/v1/orders/"+exampleOrderID, ""), http.StatusOK); err != nil {
			return err
		}
		rec = g.do(http.MethodGet, "/api/v1/orders", "")
		if err := wantStatus(t, rec, http.StatusOK); err != nil {
			return err
		}
		var list []map[string]any
		decodeBody(t, rec.Body, &list)
		if len(list) != 1 {
			return fmt.Errorf("order list %s, want one order", rec.Body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConsumerGatewayNotifications(t *testing.T) {
	p := httpPact(t, "gateway", "notifications")
	p.AddInteraction().
		GivenWithParameter(notificationsState()).
		UponReceiving("a request for the caller's notifications").
		WithRequest(http.MethodGet, "/api/v1/notifications", func(b *consumer.V4RequestBuilder) {
			b.Header("Authorization", customerToken())
		}).
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) { b.JSONBody(notificationsBody()) })
	err := p.ExecuteTest(t, func(m consumer.MockServerConfig) error {
		g := newGateway(t, map[string]consumer.MockServerConfig{"notifications": m})
		return wantStatus(t, g.do(http.MethodGet, "/api/v1/notifications", ""), http.StatusOK)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConsumerGatewaySummary drives the summary aggregation against all four
// upstreams at once: every part must arrive and none may be degraded.
func TestConsumerGatewaySummary(t *testing.T) {
	orders := httpPact(t, "gateway", "orders")
	addOrderLookup(orders)

	payments := httpPact(t, "gateway", "payments")
	payments.AddInteraction().
		GivenWithParameter(models.ProviderState{Name: statePayment, Parameters: map[string]any{"orderId": exampleOrderID}}).
		UponReceiving("a request for an order's payment").
		WithRequest(http.MethodGet, "/internal/payments", func(b *consumer.V4RequestBuilder) {
			b.Query("order_id", match.S(exampleOrderID))
		}).
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) {
			b.JSONBody(match.Map{
				"order_id":     match.S(exampleOrderID),
				"status":       match.Regex("CHARGED", `^(CHARGED|DECLINED|FAILED|REFUNDED|VOIDED)$`),
				"amount_cents": match.Integer(8900),
				"card_last4":   match.Regex("4242", `^[0-9]{4}$`),
				"created_at":   timestamp(),
			})
		})

	users := httpPact(t, "gateway", "users")
	users.AddInteraction().
		Given(stateCustomer).
		UponReceiving("a request for a customer's profile").
		WithRequestPathMatcher(http.MethodGet, fromState("/internal/users/${id}", "/internal/users/"+exampleUserID, `^/internal/users/[0-9a-f-]{36}$`)).
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) {
			b.JSONBody(match.Map{
				"id":    match.Regex(exampleUserID, uuidRegexp),
				"email": match.Like("carol@example.com"),
				"name":  match.Like("Carol Customer"),
			})
		})

	notifications := httpPact(t, "gateway", "notifications")
	notifications.AddInteraction().
		GivenWithParameter(notificationsState()).
		UponReceiving("a request for an order's notifications").
		WithRequest(http.MethodGet, "/api/v1/notifications", func(b *consumer.V4RequestBuilder) {
			b.Query("order_id", match.S(exampleOrderID)).Header("Authorization", customerToken())
		}).
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) { b.JSONBody(notificationsBody()) })

	err := orders.ExecuteTest(t, func(om consumer.MockServerConfig) error {
		return payments.ExecuteTest(t, func(pm consumer.MockServerConfig) error {
			return users.ExecuteTest(t, func(um consumer.MockServerConfig) error {
				return notifications.ExecuteTest(t, func(nm consumer.MockServerConfig) error {
					g := newGateway(t, map[string]consumer.MockServerConfig{"orders": om, "payments": pm, "users": um, "notifications": nm})
					rec := g.do(http.MethodGet, "/api/v1/orders/"+exampleOrderID+"/summary", "")
					if err := wantStatus(t, rec, http.StatusOK); err != nil {
						return err
					}
					var s summary.Summary
					if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
						return err
					}
					if len(s.Degraded) != 0 {
						return fmt.Errorf("summary degraded %v: %s", s.Degraded, rec.Body)
					}
					return nil
				})
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
