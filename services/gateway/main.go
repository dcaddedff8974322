// Command gateway is the only public entry of the shop: it routes by path
// prefix to services found in the registry, verifies JWTs, rate-limits per
// client, protects every upstream with a breaker, and aggregates order summaries.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/msctl/msctl/services/gateway/api"
	"github.com/msctl/msctl/services/gateway/ratelimit"
	"github.com/msctl/msctl/services/gateway/routes"
	"github.com/msctl/msctl/services/gateway/summary"
	"github.com/msctl/msctl/services/gateway/upstream"
	"github.com/msctl/msctl/services/kit"
	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/config"
)

func main() {
	// A proxy's live heap is small and nearly all it allocates dies with the request, so the
	// default GOGC=100 collects far more often than memory needs: every request would pay for
	// it. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	kit.Run("gateway", nil, setup)
}

// gcPercent lets the heap grow to five times what is live before a collection.
const gcPercent = 400

// sweepInterval is how often idle rate-limit buckets are dropped.
const sweepInterval = time.Minute

func setup(_ context.Context, s *kit.Service) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	table, err := routes.Parse(cfg.Routes)
	if err != nil {
		return fmt.Errorf("GATEWAY_ROUTES: %w", err)
	}

	services := slices.Concat(table.Services(), summary.Services)
	retries := cfg.UpstreamRetries
	if retries == 0 {
		retries = -1 // kit reads 0 as "default"
	}
	pool := upstream.NewPool(s.Picker(), services, client.Options{
		Timeout:          cfg.UpstreamTimeout,
		Retries:          retries,
		FailureThreshold: uint32(cfg.BreakerFailures),
		OpenTimeout:      cfg.BreakerOpenTimeout,
	})

	verifier := s.UserTokens(cfg.Auth)
	limiter := ratelimit.New(ratelimit.Options{RPS: cfg.RateLimitRPS, Burst: cfg.RateLimitBurst, MaxClients: cfg.RateLimitClients})
	g := &api.Gateway{
		Routes:   table,
		Verifier: verifier,
		Limiter:  limiter,
		Upstream: pool,
		Summary:  summary.New(pool, cfg.SummaryTimeout, s.Log),
		Log:      s.Log,
	}
	g.Register(s.Mux)

	if r := s.Resolver(); r != nil {
		s.AddCheck("registry", r.WaitSynced)
	}
	s.Go(func(ctx context.Context) error {
		t := time.NewTicker(sweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				limiter.Sweep()
			}
		}
	})
	s.Log.Info("gateway routes", "routes", cfg.Routes)
	return nil
}
