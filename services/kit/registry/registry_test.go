package registry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/msctl/msctl/internal/infra/embetcd"
	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/registry"
)

// childEnv makes the test binary act as a service instance that registers and then waits to be
// killed; see TestLeaseExpiresWhenProcessIsKilled.
const childEnv = "REGISTRY_TEST_CHILD_ENDPOINTS"

func TestMain(m *testing.M) {
	if eps := os.Getenv(childEnv); eps != "" {
		os.Exit(runChild(strings.Split(eps, ",")))
	}
	os.Exit(m.Run())
}

func runChild(endpoints []string) int {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ttl, err := time.ParseDuration(os.Getenv("REGISTRY_TTL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r := registry.NewRegistrar(cli, registry.Instance{ID: "child-1", Service: "victim", Addr: "127.0.0.1:1"}, ttl, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Register(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("registered")
	time.Sleep(time.Minute) // the parent kills us long before
	return 0
}

func newClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func keyExists(t *testing.T, cli *clientv3.Client, key string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count > 0
}

func TestRegisteredOnlyWhileReady(t *testing.T) {
	etcd := testenv.Etcd(t)
	cli := newClient(t, etcd.Endpoints())
	var ready atomic.Bool
	r := registry.NewRegistrar(cli, registry.Instance{ID: "a-1", Service: "alpha", Addr: "127.0.0.1:9"}, 2*time.Second, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, func(context.Context) error {
			if !ready.Load() {
				return errors.New("db down")
			}
			return nil
		}, 50*time.Millisecond)
	}()
	key := registry.Key("alpha", "a-1")

	time.Sleep(300 * time.Millisecond)
	if keyExists(t, cli, key) {
		t.Fatal("registered while unready")
	}
	ready.Store(true)
	testenv.Until(t, 3*time.Second, "register once ready", func() bool { return keyExists(t, cli, key) })
	ready.Store(false)
	testenv.Until(t, 3*time.Second, "deregister when unready", func() bool { return !keyExists(t, cli, key) })
	ready.Store(true)
	testenv.Until(t, 3*time.Second, "register again", func() bool { return keyExists(t, cli, key) })

	cancel()
	<-done
	if keyExists(t, cli, key) {
		t.Fatal("key left behind after shutdown")
	}
}

func TestLeaseExpiresWhenProcessIsKilled(t *testing.T) {
	etcd := testenv.Etcd(t)
	cli := newClient(t, etcd.Endpoints())
	const ttl = 2 * time.Second

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+strings.Join(etcd.Endpoints(), ","), "REGISTRY_TTL="+ttl.String())
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	select {
	case l := <-line:
		if l != "registered" {
			t.Fatalf("child said %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not register")
	}
	key := registry.Key("victim", "child-1")
	if !keyExists(t, cli, key) {
		t.Fatal("child's key missing")
	}
	// Outlive one TTL first: the child's keep-alive must be what held the key.
	time.Sleep(ttl + 500*time.Millisecond)
	if !keyExists(t, cli, key) {
		t.Fatal("key expired while the child was alive")
	}

	if err := child.Process.Kill(); err != nil { // SIGKILL: no chance to deregister
		t.Fatal(err)
	}
	_ = child.Wait()
	killed := time.Now()
	testenv.Until(t, ttl+2*time.Second, "key vanishes after lease expiry", func() bool { return !keyExists(t, cli, key) })
	t.Logf("key gone %v after SIGKILL", time.Since(killed).Round(100*time.Millisecond))
}

// instance is a real HTTP server registered like a service instance.
type instance struct {
	ts        *httptest.Server
	cli       *clientv3.Client
	hits      atomic.Int32
	reg       *registry.Registrar
	closeOnce sync.Once
}

func startInstance(t *testing.T, endpoints []string, id string) *instance {
	t.Helper()
	in := &instance{}
	in.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.hits.Add(1)
		_, _ = w.Write([]byte(id))
	}))
	t.Cleanup(in.ts.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	in.cli = cli
	t.Cleanup(in.crash)
	in.reg = registry.NewRegistrar(cli, registry.Instance{ID: id, Service: "echo", Addr: strings.TrimPrefix(in.ts.URL, "http://")}, time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.reg.Register(ctx); err != nil {
		t.Fatal(err)
	}
	return in
}

// crash stops serving and drops the etcd session without deregistering, like a dead process.
func (in *instance) crash() {
	in.closeOnce.Do(func() {
		in.ts.Close()
		_ = in.cli.Close()
	})
}

func TestResolverBalancesAndDropsDeadInstance(t *testing.T) {
	etcd := testenv.Etcd(t)
	a := startInstance(t, etcd.Endpoints(), "echo-a")
	b := startInstance(t, etcd.Endpoints(), "echo-b")

	res := registry.NewResolver(newClient(t, etcd.Endpoints()), nil)
	t.Cleanup(res.Close)
	testenv.Until(t, 3*time.Second, "both instances resolved", func() bool { return len(res.Instances("echo")) == 2 })

	c := client.New("echo-resolved", pickAs{res, "echo"}, client.Options{Retries: -1, FailureThreshold: 1000})
	ctx := context.Background()
	for range 20 {
		if err := c.Do(ctx, "GET", "/", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if a.hits.Load() != 10 || b.hits.Load() != 10 {
		t.Fatalf("round robin gave %d and %d, want 10 and 10", a.hits.Load(), b.hits.Load())
	}

	b.crash()
	testenv.Until(t, 4*time.Second, "dead instance dropped after its lease expired", func() bool {
		list := res.Instances("echo")
		return len(list) == 1 && list[0].ID == "echo-a"
	})
	before := a.hits.Load()
	for range 10 {
		if err := c.Do(ctx, "GET", "/", nil, nil); err != nil {
			t.Fatalf("call after drop: %v", err)
		}
	}
	if a.hits.Load() != before+10 {
		t.Fatalf("survivor got %d of 10 calls", a.hits.Load()-before)
	}

	// A graceful deregistration is seen at once, without waiting for a TTL.
	if err := a.reg.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Until(t, time.Second, "deregistered instance dropped", func() bool { return len(res.Instances("echo")) == 0 })
	if _, err := res.Pick("echo"); !errors.Is(err, registry.ErrNoInstances) {
		t.Fatalf("Pick with no instances = %v", err)
	}
}

// pickAs lets a client with its own breaker name resolve another service's instances.
type pickAs struct {
	p       registry.Picker
	service string
}

func (p pickAs) Pick(string) (registry.Instance, error) { return p.p.Pick(p.service) }

func TestRegistrationRetriesUntilEtcdIsUp(t *testing.T) {
	ports, err := freeport.GetN(2)
	if err != nil {
		t.Fatal(err)
	}
	endpoints := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	cli := newClient(t, endpoints)
	r := registry.NewRegistrar(cli, registry.Instance{ID: "late-1", Service: "late", Addr: "127.0.0.1:9"}, 2*time.Second, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, func(context.Context) error { return nil }, 100*time.Millisecond)
	}()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)

	time.Sleep(500 * time.Millisecond) // a few failed attempts against nothing
	if r.Registered() {
		t.Fatal("registered without etcd")
	}
	etcd, err := embetcd.Start(embetcd.Config{DataDir: t.TempDir(), ClientPort: ports[0], PeerPort: ports[1]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	testenv.Until(t, 10*time.Second, "registered once etcd is up", func() bool { return keyExists(t, cli, registry.Key("late", "late-1")) })
	// Deregister and hang up while etcd still runs; a server closing under a live client waits.
	stop()
	_ = cli.Close()
}
