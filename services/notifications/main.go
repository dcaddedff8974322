// Command notifications tells customers how their orders ended: it consumes
// the order confirmed/cancelled events and stores one notification per order
// and kind.
package main

import (
	"context"

	"github.com/msctl/msctl/services/kit"
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
	a := app.New(postgres.New(s.DB))
	b, err := s.Bus(ctx)
	if err != nil {
		return err
	}
	h := broker.BatchHandler(s.DB, a)
	s.ConsumeBatch(b, broker.Consumer, h)
	api.Register(s.Mux, a)
	return nil
}
