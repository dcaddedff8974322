// Command users is the accounts service: signup, login with EdDSA-signed JWTs, and the JWKS the
// gateway verifies them with.
package main

import (
	"context"
	"fmt"

	"github.com/msctl/msctl/services/kit"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/users/adapters/postgres"
	"github.com/msctl/msctl/services/users/api"
	"github.com/msctl/msctl/services/users/app"
	"github.com/msctl/msctl/services/users/migrations"
)

func main() {
	kit.Run("users", migrations.FS, setup)
}

func setup(ctx context.Context, s *kit.Service) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	cfg.applyDefaults()
	if cfg.TokenTTL <= 0 {
		return fmt.Errorf("TOKEN_TTL must be positive (for example TOKEN_TTL=1h)")
	}
	repo := postgres.New(s.DB)
	key, published, err := app.LoadKeys(ctx, repo)
	if err != nil {
		return err
	}
	issuer := app.NewIssuer(key, published, app.TokenConfig{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: cfg.TokenTTL})
	a, err := app.New(repo, issuer, cfg.BcryptCost)
	if err != nil {
		return fmt.Errorf("BCRYPT_COST: %w", err)
	}
	api.Register(s.Mux, a)
	return nil
}
