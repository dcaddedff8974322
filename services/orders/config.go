package main

import (
	"time"

	"github.com/msctl/msctl/services/kit/auth"
)

// Config is the orders service's own environment, on top of kit's config.Base.
type Config struct {
	// StepTimeout is how long a saga step waits for its reply before it is
	// re-sent (or, after MaxAttempts, compensated).
	StepTimeout time.Duration `env:"ORDERS_SAGA_STEP_TIMEOUT" default:"30s" example:"30s"`
	// MaxAttempts is how often a forward step's command is sent before the saga gives up.
	MaxAttempts int `env:"ORDERS_SAGA_MAX_ATTEMPTS" default:"3" example:"3"`
	// RebuildReadModel rebuilds the read model from the order events at start.
	RebuildReadModel bool `env:"ORDERS_REBUILD_READ_MODEL" default:"false" example:"true"`
	// CardVault seals card numbers for payments (msctl.yaml `secrets: [card-vault]`).
	CardVault string `env:"MSCTL_SECRET_CARD_VAULT" required:"true" example:"(set by msctl)"`
	// Auth checks the customers' tokens the gateway forwards.
	Auth auth.Config
	// OwnSecret salts request hashes; msctl gives every service its own.
	OwnSecret string `env:"MSCTL_SERVICE_SECRET" required:"true" example:"(set by msctl)"`
}
