package secrets

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKeepsTheSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".msctl")
	first, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) || len(first) != size {
		t.Errorf("second load gave another secret")
	}
}

func TestLoadOrCreateRefusesUnsafeFiles(t *testing.T) {
	for name, tc := range map[string]struct {
		data []byte
		mode os.FileMode
		want string
	}{
		"world readable": {bytes.Repeat([]byte{1}, size), 0o644, "chmod 600"},
		"wrong size":     {[]byte("short"), 0o600, "has 5 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, File)
			if err := os.WriteFile(path, tc.data, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, tc.data) {
				t.Error("the refused file was changed")
			}
		})
	}
}

func TestEnvDerivesPerServiceAndShared(t *testing.T) {
	m1 := bytes.Repeat([]byte{1}, size)
	m2 := bytes.Repeat([]byte{2}, size)
	orders, err := Env(m1, "orders", []string{"card-vault"})
	if err != nil {
		t.Fatal(err)
	}
	payments, _ := Env(m1, "payments", []string{"card-vault"})
	other, _ := Env(m2, "orders", []string{"card-vault"})
	again, _ := Env(m1, "orders", []string{"card-vault"})

	if orders[ServiceEnv] == payments[ServiceEnv] {
		t.Error("two services got the same own secret")
	}
	if orders["MSCTL_SECRET_CARD_VAULT"] != payments["MSCTL_SECRET_CARD_VAULT"] {
		t.Error("a shared secret differs between the services sharing it")
	}
	if orders["MSCTL_SECRET_CARD_VAULT"] == orders[ServiceEnv] {
		t.Error("shared and own secret are equal")
	}
	if other[ServiceEnv] == orders[ServiceEnv] {
		t.Error("another workspace derived the same secret")
	}
	if again[ServiceEnv] != orders[ServiceEnv] {
		t.Error("derivation is not stable")
	}
	if len(payments) != 2 {
		t.Errorf("payments got %d variables, want its own and card-vault", len(payments))
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"card-vault": true, "salt": true, "k2": true,
		"": false, "Card": false, "card_vault": false, "-x": false, "x-": false, "a--b": false, "1a": false,
	} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, !want, want)
		}
	}
}
