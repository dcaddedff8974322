package testenv

import (
	"testing"

	"github.com/msctl/msctl/internal/infra/embetcd"
)

// Etcd starts an embedded single-member etcd for this test only, stored in a
// temporary directory, and closes it when the test ends.
func Etcd(t testing.TB) *embetcd.Server {
	t.Helper()
	s, err := embetcd.Start(embetcd.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
