// Command payments charges and refunds orders, once per order, on commands
// from the orders saga. Test cards decline (4000000000000002) or fail
// (4000000000000119) on purpose, and a fault knob injects failures and
// latency at run time (POST /internal/faults).
package main

import (
	"context"
	"fmt"

	"github.com/msctl/msctl/services/kit"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/vault"
	"github.com/msctl/msctl/services/payments/adapters/broker"
	"github.com/msctl/msctl/services/payments/adapters/postgres"
	"github.com/msctl/msctl/services/payments/api"
	"github.com/msctl/msctl/services/payments/app"
	"github.com/msctl/msctl/services/payments/migrations"
)

func main() {
	kit.Run("payments", migrations.FS, setup)
}

func setup(ctx context.Context, s *kit.Service) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	faults := &app.Faults{}
	if err := faults.Set(cfg.FailureRate, cfg.Latency); err != nil {
		return fmt.Errorf("PAYMENTS_FAILURE_RATE/PAYMENTS_LATENCY: %w", err)
	}
	cards, err := vault.New(cfg.CardVault, "MSCTL_SECRET_CARD_VAULT")
	if err != nil {
		return err
	}
	a := app.New(postgres.New(s.DB), cards, faults)
	b, err := s.Bus(ctx)
	if err != nil {
		return err
	}
	s.RelayOutbox(b)
	h := broker.BatchHandler(s.DB, a)
	s.ConsumeBatch(b, broker.Consumer, h)
	api.Register(s.Mux, a)
	return nil
}
