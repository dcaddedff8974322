package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxAuthorizationBytes bounds the Authorization header the gateway parses.
// Real tokens are a few hundred bytes; anything bigger is refused before any
// decoding work.
const MaxAuthorizationBytes = 4096

// maxSubjectBytes bounds the user id a token may carry.
const maxSubjectBytes = 128

// leeway absorbs clock skew between the users service and the gateway.
const leeway = 2 * time.Second

// validMethods pins the accepted algorithms; each key is further bound to the
// one algorithm it was published with.
var validMethods = []string{"EdDSA", "RS256"}

// KeyLookup finds a verification key by kid.
type KeyLookup interface {
	Key(ctx context.Context, kid string) (Key, error)
}

var _ KeyLookup = (*KeyCache)(nil)

// Error is a verification failure; Reason is safe to show to the client.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Verifier checks bearer tokens: signature by kid, pinned algorithm, required
// exp, nbf, issuer and audience.
type Verifier struct {
	keys     KeyLookup
	issuer   string
	audience string
	now      func() time.Time
}

// NewVerifier returns a verifier for tokens from issuer meant for audience.
func NewVerifier(keys KeyLookup, issuer, audience string) *Verifier {
	return &Verifier{keys: keys, issuer: issuer, audience: audience, now: time.Now}
}

// Verify checks an Authorization header value and returns the user id (sub).
func (v *Verifier) Verify(ctx context.Context, authorization string) (string, error) {
	if authorization == "" {
		return "", &Error{Reason: "missing bearer token"}
	}
	if len(authorization) > MaxAuthorizationBytes {
		return "", &Error{Reason: "authorization header too large"}
	}
	scheme, raw, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return "", &Error{Reason: "authorization must be 'Bearer <token>'"}
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(strings.TrimSpace(raw), &claims, v.keyfunc(ctx),
		jwt.WithValidMethods(validMethods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(v.now),
	)
	if err != nil {
		return "", &Error{Reason: reason(err), Err: err}
	}
	if claims.Subject == "" || len(claims.Subject) > maxSubjectBytes || !printable(claims.Subject) {
		return "", &Error{Reason: "token subject is missing or invalid"}
	}
	return claims.Subject, nil
}

func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		key, err := v.keys.Key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != key.Alg {
			return nil, fmt.Errorf("key %s is for %s, token uses %s", kid, key.Alg, t.Method.Alg())
		}
		return key.Public, nil
	}
}

// reason maps a jwt error to a short client-facing message.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, ErrUnknownKey):
		return "token signed by an unknown key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid token signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token cannot be verified"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token has the wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token has the wrong audience"
	default:
		return "invalid token"
	}
}

func printable(s string) bool {
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
