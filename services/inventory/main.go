// Command inventory is the catalogue and stock service: it lists products and reserves and
// releases stock per order, without ever selling more than it has.
package main

import (
	"context"

	"github.com/msctl/msctl/services/inventory/adapters/broker"
	"github.com/msctl/msctl/services/inventory/adapters/postgres"
	"github.com/msctl/msctl/services/inventory/api"
	"github.com/msctl/msctl/services/inventory/app"
	"github.com/msctl/msctl/services/inventory/migrations"
	"github.com/msctl/msctl/services/kit"
)

func main() {
	kit.Run("inventory", migrations.FS, setup)
}

func setup(ctx context.Context, s *kit.Service) error {
	inv := app.New(s.DB, postgres.New(s.DB))
	api.Register(s.Mux, inv)
	// The saga's stock commands arrive over NATS; without it only the HTTP catalogue runs.
	if s.NATS != nil {
		b, err := s.Bus(ctx)
		if err != nil {
			return err
		}
		s.RelayOutbox(b)
		s.Consume(b, broker.Consumer, broker.Handler(s.DB, inv))
	}
	return nil
}
