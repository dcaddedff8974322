package registry_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/infra/embetcd"
	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/registry"
)

// TestRegistryOutlivesEtcdRestart: etcd goes away for longer than the
// lease and comes back on the same port, with its data (a restart) or
// without it (its data was lost). The registrar registers afresh and the
// resolver sees the instance again, with nobody restarting the service.
func TestRegistryOutlivesEtcdRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keepData bool
	}{{"data kept", true}, {"data lost", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ports, err := freeport.GetN(2)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			start := func(dir string) *embetcd.Server {
				t.Helper()
				s, err := embetcd.Start(embetcd.Config{DataDir: dir, ClientPort: ports[0], PeerPort: ports[1]})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			etcd := start(dir)
			endpoints := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
			cli := newClient(t, endpoints)
			const ttl = time.Second
			r := registry.NewRegistrar(cli, registry.Instance{ID: "b-1", Service: "beta", Addr: "127.0.0.1:9"}, ttl, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.Run(ctx, func(context.Context) error { return nil }, 100*time.Millisecond)
			}()
			res := registry.NewResolver(newClient(t, endpoints), nil)
			key := registry.Key("beta", "b-1")
			testenv.Until(t, 5*time.Second, "registered and resolved", func() bool { return len(res.Instances("beta")) == 1 })

			begin := time.Now()
			etcd.Close()
			t.Logf("closed in %s", time.Since(begin).Round(time.Millisecond))
			time.Sleep(ttl + 2*time.Second) // the lease's keep-alive gives up
			if !tc.keepData {
				dir = t.TempDir()
			}
			etcd = start(dir)
			restarted := time.Now()
			// The client reconnects at its own pace: until it has, a read
			// times out, which means "not yet", not a failure.
			testenv.Until(t, 15*time.Second, "registered again", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				resp, err := cli.Get(ctx, key)
				return err == nil && resp.Count > 0
			})
			t.Logf("registered %s after the restart", time.Since(restarted).Round(time.Millisecond))
			// Past the old lease's TTL (renewed by the restart): the key
			// lives on a new lease, not the old one.
			time.Sleep(time.Until(restarted.Add(3 * ttl)))
			if !keyExists(t, cli, key) {
				t.Fatal("the key vanished with the old lease: not registered afresh")
			}
			testenv.Until(t, 10*time.Second, "resolved again", func() bool { return len(res.Instances("beta")) == 1 })

			var once sync.Once
			stop := func() { once.Do(func() { cancel(); <-done; res.Close(); etcd.Close() }) }
			stop()
		})
	}
}
