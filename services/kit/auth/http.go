package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/httpx"
)

// Config is how a service finds and checks the users' tokens.
type Config struct {
	// Issuer and Audience must match what the users service puts in tokens.
	Issuer   string `env:"JWT_ISSUER" default:"msctl-users"`
	Audience string `env:"JWT_AUDIENCE" default:"msctl"`
	// Service serves /.well-known/jwks.json.
	Service string `env:"AUTH_SERVICE" default:"users"`
	// Refresh is the periodic key refresh; MinRefresh the least time
	// between refreshes triggered by tokens with an unknown kid.
	Refresh    time.Duration `env:"JWKS_REFRESH" default:"5m" example:"5m"`
	MinRefresh time.Duration `env:"JWKS_MIN_REFRESH" default:"5s" example:"5s"`
}

// Validate reports settings no verifier can run with.
func (c Config) Validate() error {
	if c.Refresh <= 0 || c.MinRefresh <= 0 {
		return errors.New("JWKS_REFRESH and JWKS_MIN_REFRESH must be positive")
	}
	return nil
}

// ClientJWKS fetches the issuer's key set through a kit client to it.
type ClientJWKS struct {
	Client *client.Client
}

// FetchJWKS implements Fetcher.
func (j ClientJWKS) FetchJWKS(ctx context.Context) ([]byte, error) {
	status, body, err := j.Client.Get(ctx, "/.well-known/jwks.json", http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("get jwks: status %d", status)
	}
	return body, nil
}

// Users tells handlers who a request acts for; *Verifier is the one
// services use.
type Users interface {
	User(w http.ResponseWriter, r *http.Request) (string, bool)
}

var _ Users = (*Verifier)(nil)

// User returns the user r's bearer token proves, or answers itself and
// returns false: 401 (with the RFC 6750 challenge) for a token that does
// not prove one, 503 while no key could be fetched yet (users is down and
// nothing is cached): the token may be fine, and a 401 would send the
// customer to log in again for an outage.
func (v *Verifier) User(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := v.Verify(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		if c, ok := v.keys.(interface{ Len() int }); ok && c.Len() == 0 && errors.Is(err, ErrUnknownKey) {
			httpx.WriteError(w, r, errs.Unavailable("auth_unavailable", "the token keys could not be fetched yet; retry shortly"))
			return "", false
		}
		WriteUnauthorized(w, r, err)
		return "", false
	}
	return id, true
}

// WriteUnauthorized answers 401 for a failed verification: the reason is
// safe to show (an *Error's Reason), anything else is "invalid token".
func WriteUnauthorized(w http.ResponseWriter, r *http.Request, err error) {
	msg := "invalid token"
	var ae *Error
	if errors.As(err, &ae) {
		msg = ae.Reason
	}
	challenge := `Bearer realm="msctl"`
	if r.Header.Get("Authorization") != "" {
		// RFC 6750 §3: a presented but unusable token is invalid_token.
		challenge += `, error="invalid_token", error_description=` + strconv.Quote(msg)
	}
	w.Header().Set("WWW-Authenticate", challenge)
	httpx.WriteError(w, r, errs.Unauthorized("unauthorized", msg))
}
