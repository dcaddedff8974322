// Command notifications tells customers how their orders ended: it consumes
// the order confirmed/cancelled events and stores one notification per order
// and kind.
package main

import (
	"context"

	"github.com/msctl/msctl/services/kit"
	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/notifications/adapters/broker"
	"github.com/msctl/msctl/services/notifications/adapters/postgres"
	"github.com/msctl/msctl/services/notifications/api"
	"github.com/msctl/msctl/services/notifications/app"
	"github.com/msctl/msctl/services/notifications/migrations"
)

func main() {
	kit.Run("notifications", migrations.FS, setup)
}

func setup(ctx context.Context, s *kit.Service) error {
	// Its one route acts for a customer: the token the gateway forwards
	// says which.
	var authCfg auth.Config
	if err := config.Load(&authCfg); err != nil {
		return err
	}
	if err := authCfg.Validate(); err != nil {
		return err
	}
	a := app.New(postgres.New(s.DB))
	b, err := s.Bus(ctx)
	if err != nil {
		return err
	}
	h := broker.BatchHandler(s.DB, a)
	s.ConsumeBatch(b, broker.Consumer, h)
	users := s.UserTokens(authCfg)
	api.Register(s.Mux, users, a)
	return nil
}
