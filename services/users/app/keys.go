package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeyStore persists signing keys so tokens survive restarts and every replica signs alike.
type KeyStore interface {
	// EnsureKey stores candidate when no key is stored yet (atomically: concurrent starts agree)
	// and returns all stored keys, oldest first.
	EnsureKey(ctx context.Context, candidate SigningKey) ([]SigningKey, error)
}

// LoadKeys returns the key to sign with (the newest) and the keys to publish, generating and
// storing the first key on the very first start.
func LoadKeys(ctx context.Context, ks KeyStore) (SigningKey, []SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, nil, fmt.Errorf("generate signing key: %w", err)
	}
	candidate := SigningKey{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv}
	keys, err := ks.EnsureKey(ctx, candidate)
	if err != nil {
		return SigningKey{}, nil, fmt.Errorf("load signing keys: %w", err)
	}
	if len(keys) == 0 {
		return SigningKey{}, nil, errors.New("load signing keys: none stored")
	}
	return keys[len(keys)-1], keys, nil
}
