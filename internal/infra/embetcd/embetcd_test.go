package embetcd

import (
	"context"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func startT(t *testing.T, cfg Config) *Server {
	t.Helper()
	begin := time.Now()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd ready in %v at %v", time.Since(begin), s.Endpoints())
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, s *Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEtcdPutGetSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startT(t, Config{DataDir: dir})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := client(t, s).Put(ctx, "/msctl/registry/users/1", `{"addr":"127.0.0.1:1"}`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // idempotent

	// New ports on purpose: the local runtime picks free ports on every start.
	s = startT(t, Config{DataDir: dir})
	resp, err := client(t, s).Get(ctx, "/msctl/registry/users/1")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != `{"addr":"127.0.0.1:1"}` {
		t.Fatalf("after restart got %v, want the stored key", resp.Kvs)
	}
}

func TestEtcdFixedPortInUse(t *testing.T) {
	a := startT(t, Config{DataDir: t.TempDir()})
	p, err := strconv.Atoi(a.etcd.Config().ListenClientUrls[0].Port())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := Start(Config{DataDir: t.TempDir(), ClientPort: p}); err == nil {
		b.Close()
		t.Fatal("second member on the same client port started")
	}
}
