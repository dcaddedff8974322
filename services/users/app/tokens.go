package app

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SigningKey is an Ed25519 key with its key id.
type SigningKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// KeyID derives a key id from the public key: its RFC 7638 JWK thumbprint, so the same key always
// has the same id.
func KeyID(pub ed25519.PublicKey) string {
	// RFC 7638: the required members in lexicographic order, no whitespace.
	canon, _ := json.Marshal(struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
	}{"Ed25519", "OKP", base64.RawURLEncoding.EncodeToString(pub)})
	sum := sha256.Sum256(canon)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// JWK is one public key in a JWK Set (RFC 8037 OKP key).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKSet is the body of /.well-known/jwks.json.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// TokenConfig is what goes into every token besides the subject.
type TokenConfig struct {
	Issuer   string
	Audience string
	TTL      time.Duration
}

// Issuer signs access tokens with EdDSA.
type Issuer struct {
	key    SigningKey
	cfg    TokenConfig
	public []JWK
}

// NewIssuer signs with key; published lists every key verifiers should accept (key included).
func NewIssuer(key SigningKey, published []SigningKey, cfg TokenConfig) *Issuer {
	jwks := make([]JWK, 0, len(published))
	for _, k := range published {
		pub := k.Private.Public().(ed25519.PublicKey)
		jwks = append(jwks, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: k.ID, Alg: "EdDSA", Use: "sig"})
	}
	return &Issuer{key: key, cfg: cfg, public: jwks}
}

// Issue returns a signed token for userID and its expiry.
func (i *Issuer) Issue(userID string, now time.Time) (string, time.Time, error) {
	exp := now.Add(i.cfg.TTL).Truncate(time.Second)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{
		Subject:   userID,
		Issuer:    i.cfg.Issuer,
		Audience:  jwt.ClaimStrings{i.cfg.Audience},
		ExpiresAt: jwt.NewNumericDate(exp),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
	})
	tok.Header["kid"] = i.key.ID
	s, err := tok.SignedString(i.key.Private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// JWKS is the public key set.
func (i *Issuer) JWKS() JWKSet {
	return JWKSet{Keys: append([]JWK(nil), i.public...)}
}
