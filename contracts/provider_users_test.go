//go:build contracts

package contracts

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pact-foundation/pact-go/v2/models"
	"golang.org/x/crypto/bcrypt"

	"github.com/msctl/msctl/services/users/adapters/postgres"
	"github.com/msctl/msctl/services/users/api"
	"github.com/msctl/msctl/services/users/app"
	"github.com/msctl/msctl/services/users/domain"
	"github.com/msctl/msctl/services/users/migrations"
)

func TestProviderUsers(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "users", migrations.FS)
	repo := postgres.New(db)
	key, published, err := app.LoadKeys(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	issuer := app.NewIssuer(key, published, app.TokenConfig{Issuer: "msctl-users", Audience: "msctl", TTL: time.Hour})
	users, err := app.New(repo, issuer, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpServer("users")
	api.Register(srv.Mux, users)

	verify(t, providerUnderTest{
		Name:    "users",
		Handler: srv.Handler(),
		States: models.StateHandlers{
			stateAlice: func(setup bool, _ models.ProviderState) (models.ProviderStateResponse, error) {
				if !setup {
					return nil, nil
				}
				_, err := users.Signup(ctx, "alice@example.com", "wonderland-42", "Alice")
				if errors.Is(err, domain.ErrEmailTaken) {
					return nil, nil // set up by an earlier interaction
				}
				return nil, err
			},
			stateCustomer: func(setup bool, _ models.ProviderState) (models.ProviderStateResponse, error) {
				if !setup {
					return nil, nil
				}
				u, err := users.Signup(ctx, "customer-"+uuid.NewString()+"@example.com", "a-long-password", "Carol Customer")
				if err != nil {
					return nil, err
				}
				return models.ProviderStateResponse{"id": u.ID}, nil
			},
		},
	})
}
