package main

import (
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Config is the users service's own environment, on top of kit's config.Base.
type Config struct {
	// JWTIssuer is the iss claim; the gateway checks it (same default there).
	JWTIssuer string `env:"JWT_ISSUER" default:"msctl-users"`
	// JWTAudience is the aud claim; the gateway checks it (same default there).
	JWTAudience string `env:"JWT_AUDIENCE" default:"msctl"`
	// TokenTTL is how long an access token is valid.
	TokenTTL time.Duration `env:"TOKEN_TTL" default:"1h" example:"1h"`
	// BcryptCost is the password hashing cost (4..31); tests lower it to bcrypt.MinCost.
	BcryptCost int `env:"BCRYPT_COST" example:"10"`
}

func (c *Config) applyDefaults() {
	if c.BcryptCost == 0 {
		c.BcryptCost = bcrypt.DefaultCost
	}
}
