// Package auth verifies the bearer tokens the users service issues, with keys
// from its JWKS document cached in each verifying service. The gateway
// verifies them at the edge and forwards them unchanged; a service with
// user routes verifies them again and trusts no header that only claims a
// user (zero trust: a request that went around the gateway proves nothing).
package auth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"
)

// Key is one verification key and the only algorithm it may verify, so a
// token cannot pick an algorithm the key was not published for.
type Key struct {
	Alg    string
	Public crypto.PublicKey
}

// MaxJWKSBytes bounds the JWKS document the gateway accepts.
const MaxJWKSBytes = 64 << 10

// minRSABits rejects keys too short to be trusted.
const minRSABits = 2048

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// ParseJWKS decodes a JWKS document into signing keys by kid. Keys the gateway
// cannot use (encryption keys, unknown types or curves, no kid) are skipped;
// a document with no usable key is an error so a bad fetch never empties the cache.
func ParseJWKS(data []byte) (map[string]Key, error) {
	if len(data) > MaxJWKSBytes {
		return nil, fmt.Errorf("jwks is %d bytes, over the %d byte limit", len(data), MaxJWKSBytes)
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := map[string]Key{}
	for _, k := range doc.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		key, err := k.key()
		if err != nil {
			continue
		}
		keys[k.Kid] = key
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks has no usable signing key")
	}
	return keys, nil
}

func (k jwk) key() (Key, error) {
	switch k.Kty {
	case "OKP":
		if k.Crv != "Ed25519" || (k.Alg != "" && k.Alg != "EdDSA") {
			return Key{}, errors.New("unsupported OKP key")
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return Key{}, errors.New("bad Ed25519 public key")
		}
		return Key{Alg: "EdDSA", Public: ed25519.PublicKey(x)}, nil
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return Key{}, errors.New("unsupported RSA algorithm")
		}
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil || len(n)*8 < minRSABits {
			return Key{}, errors.New("bad RSA modulus")
		}
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return Key{}, errors.New("bad RSA exponent")
		}
		exp := new(big.Int).SetBytes(e)
		if exp.Int64() < 3 || exp.Bit(0) == 0 {
			return Key{}, errors.New("bad RSA exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
		if pub.N.BitLen() < minRSABits {
			return Key{}, errors.New("RSA key too short")
		}
		return Key{Alg: "RS256", Public: pub}, nil
	default:
		return Key{}, fmt.Errorf("unsupported key type %q", k.Kty)
	}
}

// Fetcher returns the raw JWKS document of the token issuer.
type Fetcher interface {
	FetchJWKS(ctx context.Context) ([]byte, error)
}

// ErrUnknownKey means no cached or freshly fetched key has the token's kid.
var ErrUnknownKey = errors.New("unknown signing key")

// KeyCache holds the issuer's keys. It refreshes periodically (Run) and on an
// unknown kid, but at most once per MinRefresh, so a flood of tokens with
// made-up kids costs the users service one request per interval, not one each.
type KeyCache struct {
	fetcher    Fetcher
	minRefresh time.Duration
	log        *slog.Logger
	now        func() time.Time

	mu   sync.RWMutex
	keys map[string]Key

	fetchMu     sync.Mutex // serialises fetches; waiters reuse the result
	lastAttempt time.Time
}

// NewKeyCache returns an empty cache; the first lookup or Run fills it.
func NewKeyCache(f Fetcher, minRefresh time.Duration, log *slog.Logger) *KeyCache {
	return &KeyCache{fetcher: f, minRefresh: minRefresh, log: log, now: time.Now, keys: map[string]Key{}}
}

// Key returns the key for kid, refreshing the set once if kid is unknown and
// the refresh rate limit allows.
func (c *KeyCache) Key(ctx context.Context, kid string) (Key, error) {
	if k, ok := c.lookup(kid); ok {
		return k, nil
	}
	c.fetchMu.Lock()
	if _, ok := c.lookup(kid); !ok && c.now().Sub(c.lastAttempt) >= c.minRefresh {
		if err := c.fetchLocked(ctx); err != nil {
			c.log.Warn("refresh jwks on unknown kid", "err", err)
		}
	}
	c.fetchMu.Unlock()
	if k, ok := c.lookup(kid); ok {
		return k, nil
	}
	return Key{}, ErrUnknownKey
}

func (c *KeyCache) lookup(kid string) (Key, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.keys[kid]
	return k, ok
}

// Refresh fetches the key set now, regardless of the rate limit.
func (c *KeyCache) Refresh(ctx context.Context) error {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	return c.fetchLocked(ctx)
}

func (c *KeyCache) fetchLocked(ctx context.Context) error {
	c.lastAttempt = c.now()
	data, err := c.fetcher.FetchJWKS(ctx)
	if err != nil {
		return fmt.Errorf("fetch jwks: %w", err)
	}
	keys, err := ParseJWKS(data)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.keys = keys
	c.mu.Unlock()
	return nil
}

// Len reports how many keys are cached.
func (c *KeyCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.keys)
}

// Run refreshes the key set every interval until ctx ends. Until the first
// success it retries every MinRefresh, so the gateway gets keys soon after
// users becomes reachable.
func (c *KeyCache) Run(ctx context.Context, interval time.Duration) error {
	for {
		wait := interval
		if err := c.Refresh(ctx); err != nil {
			c.log.Warn("refresh jwks", "err", err)
			if c.Len() == 0 {
				wait = c.minRefresh
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
