package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/msctl/msctl/services/kit/auth"
)

// Config is the gateway's own environment, on top of kit's config.Base.
type Config struct {
	// Routes is the route table every runtime passes (docs/ARCHITECTURE.md).
	Routes string `env:"GATEWAY_ROUTES" required:"true" example:"/api/v1/auth=users:public,/api/v1/orders=orders:auth"`
	// Auth is how tokens are checked, the same in every service that does.
	Auth auth.Config
	// RateLimitRPS and RateLimitBurst shape each client's token bucket;
	// RateLimitClients bounds how many clients are remembered.
	RateLimitRPS     float64 `env:"RATE_LIMIT_RPS" default:"100" example:"100"`
	RateLimitBurst   int     `env:"RATE_LIMIT_BURST" default:"200" example:"200"`
	RateLimitClients int     `env:"RATE_LIMIT_MAX_CLIENTS" default:"100000" example:"100000"`
	// UpstreamTimeout bounds one proxied call, retries included; UpstreamRetries
	// is the number of extra attempts for idempotent calls (0 disables).
	UpstreamTimeout time.Duration `env:"UPSTREAM_TIMEOUT" default:"5s" example:"5s"`
	UpstreamRetries int           `env:"UPSTREAM_RETRIES" default:"2" example:"2"`
	// BreakerFailures consecutive failures open an upstream's breaker for
	// BreakerOpenTimeout, after which one probe may close it again.
	BreakerFailures    int           `env:"BREAKER_FAILURES" default:"5" example:"5"`
	BreakerOpenTimeout time.Duration `env:"BREAKER_OPEN_TIMEOUT" default:"10s" example:"10s"`
	// SummaryTimeout is the deadline of GET /api/v1/orders/{id}/summary.
	SummaryTimeout time.Duration `env:"SUMMARY_TIMEOUT" default:"800ms" example:"800ms"`
}

func (c Config) validate() error {
	var problems []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			problems = append(problems, fmt.Errorf("%s must be positive", name))
		}
	}
	if err := c.Auth.Validate(); err != nil {
		problems = append(problems, err)
	}
	positive("UPSTREAM_TIMEOUT", c.UpstreamTimeout)
	positive("BREAKER_OPEN_TIMEOUT", c.BreakerOpenTimeout)
	positive("SUMMARY_TIMEOUT", c.SummaryTimeout)
	if c.RateLimitRPS <= 0 || c.RateLimitBurst < 1 {
		problems = append(problems, errors.New("RATE_LIMIT_RPS must be positive and RATE_LIMIT_BURST at least 1"))
	}
	if c.UpstreamRetries < 0 || c.BreakerFailures < 1 {
		problems = append(problems, errors.New("UPSTREAM_RETRIES must be ≥ 0 and BREAKER_FAILURES ≥ 1"))
	}
	return errors.Join(problems...)
}
