//go:build contracts

package contracts

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pact-foundation/pact-go/v2/consumer"
	match "github.com/pact-foundation/pact-go/v2/matchers"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/client"
)

// Shared shapes of the gateway's expectations.
var (
	rfc3339    = `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`
	uuidRegexp = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
)

func timestamp() match.Matcher { return match.Regex("2025-05-01T10:00:00.123456Z", rfc3339) }

func errorBody(code string) match.Map {
	return match.Map{"error": match.StructMatcher{"code": match.S(code), "message": match.Like("a human readable message")}}
}

// Provider states of users.
const (
	stateAlice    = "a customer alice@example.com with password wonderland-42 exists"
	stateCustomer = "a customer exists"
)

func TestConsumerGatewayUsers(t *testing.T) {
	p := httpPact(t, "gateway", "users")
	p.AddInteraction().
		UponReceiving("a signup request").
		WithRequest(http.MethodPost, "/api/v1/auth/signup", func(b *consumer.V4RequestBuilder) {
			b.Header("Content-Type", match.S("application/json")).
				JSONBody(match.Map{
					"email":    match.Like("new.customer@example.com"),
					"password": match.Like("correct horse battery"),
					"name":     match.Like("New Customer"),
				})
		}).
		WillRespondWith(http.StatusCreated, func(b *consumer.V4ResponseBuilder) {
			b.Header("Content-Type", match.Regex("application/json", `^application/json`)).
				JSONBody(match.Map{
					"id":    match.Regex(exampleUserID, uuidRegexp),
					"email": match.Like("new.customer@example.com"),
					"name":  match.Like("New Customer"),
				})
		})
	p.AddInteraction().
		Given(stateAlice).
		UponReceiving("a login with valid credentials").
		WithRequest(http.MethodPost, "/api/v1/auth/login", func(b *consumer.V4RequestBuilder) {
			b.Header("Content-Type", match.S("application/json")).
				JSONBody(match.Map{"email": match.S("alice@example.com"), "password": match.S("wonderland-42")})
		}).
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) {
			b.JSONBody(match.Map{
				"token":      match.Regex("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln", `^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`),
				"expires_at": timestamp(),
			})
		})
	p.AddInteraction().
		Given(stateAlice).
		UponReceiving("a login with a wrong password").
		WithRequest(http.MethodPost, "/api/v1/auth/login", func(b *consumer.V4RequestBuilder) {
			b.Header("Content-Type", match.S("application/json")).
				JSONBody(match.Map{"email": match.S("alice@example.com"), "password": match.S("not-her-password")})
		}).
		WillRespondWith(http.StatusUnauthorized, func(b *consumer.V4ResponseBuilder) {
			b.JSONBody(errorBody("invalid_credentials"))
		})
	p.AddInteraction().
		UponReceiving("a request for the token signing keys").
		WithRequest(http.MethodGet, "/.well-known/jwks.json").
		WillRespondWith(http.StatusOK, func(b *consumer.V4ResponseBuilder) {
			b.JSONBody(match.Map{"keys": match.EachLike(match.Map{
				"kty": match.S("OKP"),
				"crv": match.S("Ed25519"),
				"alg": match.S("EdDSA"),
				"use": match.S("sig"),
				"kid": match.Like("Jf2w3pYq2m5bV0r7x9zA1cD4eF6gH8iJ0kL2mN4oP6q"),
				// 32 bytes, base64url without padding: an Ed25519 public key.
				"x": match.Regex("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", `^[A-Za-z0-9_-]{43}$`),
			}, 1)})
		})

	err := p.ExecuteTest(t, func(m consumer.MockServerConfig) error {
		g := newGateway(t, map[string]consumer.MockServerConfig{"users": m})
		rec := g.do(http.MethodPost, "/api/v1/auth/signup", `{"email":"new.customer@example.com","password":"correct horse battery","name":"New Customer"}`)
		if err := wantStatus(t, rec, http.StatusCreated); err != nil {
			return err
		}
		rec = g.do(http.MethodPost, "/api/v1/auth/login", `{"email":"alice@example.com","password":"wonderland-42"}`)
		if err := wantStatus(t, rec, http.StatusOK); err != nil {
			return err
		}
		rec = g.do(http.MethodPost, "/api/v1/auth/login", `{"email":"alice@example.com","password":"not-her-password"}`)
		if err := wantStatus(t, rec, http.StatusUnauthorized); err != nil {
			return err
		}
		// Every verifying service's key cache fetches and parses the set exactly like this.
		jwks := auth.ClientJWKS{Client: client.New("users", g.picker, client.Options{Timeout: 10 * time.Second, Retries: -1})}
		raw, err := jwks.FetchJWKS(context.Background())
		if err != nil {
			return err
		}
		keys, err := auth.ParseJWKS(raw)
		if err != nil {
			return err
		}
		if len(keys) != 1 {
			t.Errorf("parsed %d keys, want 1", len(keys))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fromState is a value the provider state supplies at verification
// (expression, e.g. "${id}") that must also match regex; pact-go's
// FromProviderState alone matches any string, so "/api/v1/orders" would pass
// for "/api/v1/orders/${id}".
func fromState(expression, example, regex string) match.Matcher {
	return match.StructMatcher{
		"pact:matcher:type":   "regex",
		"regex":               regex,
		"value":               example,
		"pact:generator:type": "ProviderState",
		"expression":          expression,
	}
}
