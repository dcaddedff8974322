// Package authtest signs tokens the way the users service does, for tests of
// services that verify them: a test gets a verifier over the issuer's keys
// and signs tokens for any user, as a signed-in customer would present.
package authtest

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/msctl/msctl/services/kit/auth"
)

// Issuer and Audience are the defaults the services check (auth.Config).
const (
	Issuer   = "msctl-users"
	Audience = "msctl"
	kid      = "authtest"
)

// A fixed seed: tokens one test process signs verify in another (a Pact
// consumer writes them, the provider verification reads them).
var key = ed25519.NewKeyFromSeed([]byte("msctl authtest key: 32 bytes...."))

// JWKS is the key set the users service would publish.
func JWKS() []byte {
	doc := map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
	}}}
	data, _ := json.Marshal(doc)
	return data
}

// Verifier checks tokens against JWKS, with the default issuer and audience.
func Verifier() *auth.Verifier {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return auth.NewVerifier(auth.NewKeyCache(fetcher{}, time.Minute, log), Issuer, Audience)
}

type fetcher struct{}

func (fetcher) FetchJWKS(context.Context) ([]byte, error) { return JWKS(), nil }

// Token signs a token for user valid for ttl.
func Token(t testing.TB, user string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub": user, "iss": Issuer, "aud": Audience, "iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Bearer is the Authorization header value of a token for user, valid for
// an hour.
func Bearer(t testing.TB, user string) string { return "Bearer " + Token(t, user, time.Hour) }
