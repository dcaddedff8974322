package main

import "time"

// Config is the payments service's own environment, on top of kit's config.Base.
type Config struct {
	// FailureRate is the share (0..1) of charges, refunds and lookups that fail on purpose.
	FailureRate float64 `env:"PAYMENTS_FAILURE_RATE" default:"0" example:"0.2"`
	// Latency is added to every charge, refund and lookup.
	Latency time.Duration `env:"PAYMENTS_LATENCY" default:"0s" example:"200ms"`
	// CardVault opens the card numbers orders seals (msctl.yaml `secrets: [card-vault]`).
	CardVault string `env:"MSCTL_SECRET_CARD_VAULT" required:"true" example:"(set by msctl)"`
}
