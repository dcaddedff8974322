package testenv

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/msctl/msctl/internal/infra/embetcd"
	"github.com/msctl/msctl/internal/infra/embnats"
)

// embedded starts a server for this test only, stored in a temporary
// directory, and stops it when the test ends: embedded servers start in
// milliseconds, so no test shares one.
func embedded[S any](t testing.TB, what string, start func(dir string) (S, error), stop func(S)) S {
	t.Helper()
	s, err := start(t.TempDir())
	if err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	t.Cleanup(func() { stop(s) })
	return s
}

// Etcd starts an embedded single-member etcd for this test only.
func Etcd(t testing.TB) *embetcd.Server {
	t.Helper()
	start := func(dir string) (*embetcd.Server, error) { return embetcd.Start(embetcd.Config{DataDir: dir}) }
	return embedded(t, "etcd", start, (*embetcd.Server).Close)
}

// EtcdClient is a quiet client of s, closed when the test ends.
func EtcdClient(t testing.TB, s *embetcd.Server) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// NATS starts an embedded NATS server with JetStream for this test only.
// Restart it with Restart to exercise reconnects.
func NATS(t testing.TB) *embnats.Server {
	t.Helper()
	start := func(dir string) (*embnats.Server, error) { return embnats.Start(embnats.Config{StoreDir: dir}) }
	return embedded(t, "nats", start, (*embnats.Server).Shutdown)
}
