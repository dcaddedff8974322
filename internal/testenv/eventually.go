package testenv

import (
	"errors"
	"testing"
	"time"
)

// Eventually calls cond every 100ms until it returns nil, and fails the
// test with cond's last error once within has passed.
func Eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var errNotYet = errors.New("still false")

// Until is Eventually for a condition with nothing to say when it fails.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, within, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}
