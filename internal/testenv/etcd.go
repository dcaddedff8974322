package testenv

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

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
