package testenv

import (
	"testing"

	"github.com/msctl/msctl/internal/infra/embnats"
)

// NATS starts an embedded NATS server with JetStream for this test only,
// stored in a temporary directory, and shuts it down when the test ends.
// Restart it with Restart to exercise reconnects.
func NATS(t testing.TB) *embnats.Server {
	t.Helper()
	s, err := embnats.Start(embnats.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}
