// Package vault seals small secrets (a card number) so that they can travel
// through tables, streams and outboxes without being readable there: only a
// service holding the same key opens them. msctl hands services that share a
// key the same MSCTL_SECRET_<NAME> (msctl.yaml `secrets:`).
//
// A sealed value is "v1." + base64url(nonce ‖ AES-256-GCM ciphertext). The
// caller binds it to its context with associated data (the order id), so a
// sealed value copied into another record does not open.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const prefix = "v1."

// ErrOpen says a sealed value did not open: another key sealed it, it was
// changed, or it belongs to other associated data.
var ErrOpen = errors.New("vault: sealed value does not open with this key")

// Vault seals and opens values under one key. It is safe for concurrent use.
type Vault struct {
	aead cipher.AEAD
}

// New makes a vault from a 32-byte key written as base64url (padded or not),
// the form msctl's derived secrets take. what names the variable in errors.
func New(key, what string) (*Vault, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(key, "="))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("%s must be a 32-byte base64url key (msctl sets it from msctl.yaml `secrets:`)", what)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &Vault{aead: aead}, nil
}

// Seal encrypts plain, bound to ad.
func (v *Vault) Seal(plain, ad string) (string, error) {
	nonce := make([]byte, v.aead.NonceSize(), v.aead.NonceSize()+len(plain)+v.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("vault: %w", err)
	}
	out := v.aead.Seal(nonce, nonce, []byte(plain), []byte(ad))
	return prefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value Seal made with the same key and ad.
func (v *Vault) Open(sealed, ad string) (string, error) {
	body, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", ErrOpen
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < v.aead.NonceSize() {
		return "", ErrOpen
	}
	n := v.aead.NonceSize()
	plain, err := v.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}

// Sealed reports whether s has the form Seal gives, so that a value stored
// before sealing existed can be told apart and sealed late.
func Sealed(s string) bool { return strings.HasPrefix(s, prefix) }
