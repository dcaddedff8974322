package vault

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(k)
}

func TestSealOpen(t *testing.T) {
	v, err := New(newKey(t), "KEY")
	if err != nil {
		t.Fatal(err)
	}
	const card = "4242424242424242"
	s, err := v.Seal(card, "order-1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, card) || strings.Contains(s, "4242") || !Sealed(s) {
		t.Fatalf("sealed value %q shows the card or lacks the prefix", s)
	}
	again, _ := v.Seal(card, "order-1")
	if again == s {
		t.Error("two seals of the same value are equal: the nonce is not fresh")
	}
	if got, err := v.Open(s, "order-1"); err != nil || got != card {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := New(newKey(t), "KEY")
	for name, open := range map[string]func() (string, error){
		"other order":   func() (string, error) { return v.Open(s, "order-2") },
		"other key":     func() (string, error) { return other.Open(s, "order-1") },
		"changed":       func() (string, error) { return v.Open(s[:len(s)-2]+"AA", "order-1") },
		"plain":         func() (string, error) { return v.Open(card, "order-1") },
		"bad base64":    func() (string, error) { return v.Open("v1.!!", "order-1") },
		"short payload": func() (string, error) { return v.Open("v1.AAAA", "order-1") },
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: err = %v, want ErrOpen", name, err)
		}
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	for _, k := range []string{"", "short", base64.RawURLEncoding.EncodeToString(make([]byte, 16)), "not base64 !!!"} {
		if _, err := New(k, "MSCTL_SECRET_CARD_VAULT"); err == nil || !strings.Contains(err.Error(), "MSCTL_SECRET_CARD_VAULT") {
			t.Errorf("New(%q) err = %v, want one naming the variable", k, err)
		}
	}
	if _, err := New(base64.URLEncoding.EncodeToString(make([]byte, 32)), "K"); err != nil {
		t.Errorf("padded key refused: %v", err)
	}
}
