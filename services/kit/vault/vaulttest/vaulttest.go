// Package vaulttest gives tests a vault under one fixed key, so that the
// services a test wires together (orders seals, payments opens) agree, as
// msctl makes them agree by handing both the same card-vault secret.
package vaulttest

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/vault"
)

// Key is the test key, base64url like the secrets msctl derives.
var Key = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))

// New returns a vault under Key.
func New(t testing.TB) *vault.Vault {
	t.Helper()
	v, err := vault.New(Key, "test key")
	if err != nil {
		t.Fatal(err)
	}
	return v
}
