// Command orders takes orders and settles them with an orchestrated saga
// over the bus: reserve stock, charge the card, confirm, or compensate
// (refund, release) and cancel. Commands and events leave through a
// transactional outbox; replies are handled once through an inbox. The
// order list is served from a read model fed by the order events and
// rebuildable from the stream (ORDERS_REBUILD_READ_MODEL=true at start, or
// POST /internal/read-model/rebuild).
//
// Prices: the total is computed from the unit prices inventory returns in
// its StockReserved reply, i.e. the prices the stock was reserved at.
package main

import (
	"context"
	"fmt"

	"github.com/msctl/msctl/services/kit"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/vault"
	"github.com/msctl/msctl/services/orders/adapters/broker"
	"github.com/msctl/msctl/services/orders/adapters/postgres"
	"github.com/msctl/msctl/services/orders/api"
	"github.com/msctl/msctl/services/orders/app"
	"github.com/msctl/msctl/services/orders/migrations"
)

func main() {
	kit.Run("orders", migrations.FS, setup)
}

func setup(ctx context.Context, s *kit.Service) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	if cfg.StepTimeout <= 0 || cfg.MaxAttempts < 1 {
		return fmt.Errorf("ORDERS_SAGA_STEP_TIMEOUT must be positive and ORDERS_SAGA_MAX_ATTEMPTS at least 1 (for example 10s and 3)")
	}
	cards, err := vault.New(cfg.CardVault, "MSCTL_SECRET_CARD_VAULT")
	if err != nil {
		return err
	}
	keys := app.Keys{Cards: cards, RequestHash: []byte(cfg.OwnSecret)}
	a := app.New(s.DB, postgres.New(s.DB), app.SagaConfig{StepTimeout: cfg.StepTimeout, MaxAttempts: cfg.MaxAttempts, Healthy: s.Server.Ready}, keys, s.Log)
	b, err := s.Bus(ctx)
	if err != nil {
		return err
	}
	rebuild := func(ctx context.Context) (int, error) { return a.RebuildReadModel(ctx, b) }
	if cfg.RebuildReadModel {
		n, err := rebuild(ctx)
		if err != nil {
			return err
		}
		s.Log.Info("read model rebuilt", "events", n)
	}
	s.RelayOutbox(b)
	for _, c := range broker.SagaConsumers {
		s.ConsumeBatch(b, c, broker.SagaBatchHandler(s.DB, a))
	}
	s.ConsumeBatch(b, broker.ReadModelConsumer, broker.ReadModelBatchHandler(s.DB, a))
	s.Go(a.RunSweeper)
	if err := cfg.Auth.Validate(); err != nil {
		return err
	}
	users := s.UserTokens(cfg.Auth)
	api.Register(s.Mux, users, a, rebuild)
	return nil
}
