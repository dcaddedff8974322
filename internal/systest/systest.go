// Package systest runs the shop's services as real processes against real
// infrastructure, for system tests: a shared Postgres (one database and role
// per service), an embedded NATS JetStream and an embedded etcd per Env, and
// each service binary built once per test binary and started as a child
// process in its own process group with the environment of
// docs/ARCHITECTURE.md.
//
// A package using it owns its TestMain and calls testenv.Main(m) (the shared
// Postgres is stopped there).
package systest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/msctl/msctl/internal/infra/embetcd"
	"github.com/msctl/msctl/internal/infra/embnats"
	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/secrets"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/auth/authtest"
	"github.com/msctl/msctl/services/kit/registry"
)

// ReadyTimeout bounds how long Start waits for /readyz and the registry.
const ReadyTimeout = 60 * time.Second

// Env is one system under test.
type Env struct {
	t    testing.TB
	NATS *embnats.Server
	Etcd *embetcd.Server

	etcdCli *clientv3.Client
	// secret is this Env's workspace secret: services get the secrets
	// msctl would derive from it (their own, and what msctl.yaml lists).
	secret []byte
	mu     sync.Mutex
	svcs   map[string]*Service
}

// New starts the broker and registry for one test; services are started
// with Start. Everything is stopped when the test ends.
func New(t testing.TB) *Env {
	t.Helper()
	testenv.Postgres(t) // fail or skip early when Postgres is unavailable
	secret, err := secrets.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, NATS: testenv.NATS(t), Etcd: testenv.Etcd(t), secret: secret, svcs: map[string]*Service{}}
	e.etcdCli = testenv.EtcdClient(t, e.Etcd)
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpLogs()
		}
	})
	return e
}

// Service is one service process (restartable).
type Service struct {
	Name string
	// URL is the service's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// DSN is the service's own database, empty without one.
	DSN string

	bin  string
	env  []string
	logs *testenv.Buffer
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status once done is closed
}

// Start builds (once) and starts service name and waits until it is ready
// and registered. extra adds or overrides environment variables, e.g.
// GATEWAY_ROUTES or PAYMENTS_FAILURE_RATE.
func (e *Env) Start(name string, extra map[string]string) *Service {
	e.t.Helper()
	bin := Build(e.t, name)[0]
	port, err := freeport.Get()
	if err != nil {
		e.t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Service{Name: name, URL: "http://" + addr, bin: bin, logs: &testenv.Buffer{}}
	vars := map[string]string{
		"SERVICE_NAME":   name,
		"INSTANCE_ID":    name + "-1",
		"HTTP_ADDR":      addr,
		"ADVERTISE_ADDR": addr,
		"ETCD_ENDPOINTS": strings.Join(e.Etcd.Endpoints(), ","),
		"NATS_URL":       e.NATS.URL(),
		"LOG_LEVEL":      "info",
		"REGISTRY_TTL":   "2s",
	}
	if hasDatabase(name) {
		s.DSN = withPoolSize(testenv.Database(e.t, name), 16)
		vars["DATABASE_URL"] = s.DSN
	}
	sec, err := secrets.Env(e.secret, name, shopSecrets(e.t, name))
	if err != nil {
		e.t.Fatal(err)
	}
	maps.Copy(vars, sec)
	for k, v := range extra {
		vars[k] = v
	}
	s.env = os.Environ()
	for k, v := range vars {
		s.env = append(s.env, k+"="+v)
	}
	e.mu.Lock()
	e.svcs[name] = s
	e.mu.Unlock()
	// Registered after the database's cleanup, so it runs before the drop.
	e.t.Cleanup(func() { s.Stop(e.t) })
	e.Resume(name)
	return s
}

// Service returns a started service.
func (e *Env) Service(name string) *Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.svcs[name]
	if !ok {
		e.t.Fatalf("service %s was never started", name)
	}
	return s
}

// URL is the base URL of a started service.
func (e *Env) URL(name string) string { return e.Service(name).URL }

// Kill sends SIGKILL to the service's process group and waits for it to die.
func (e *Env) Kill(name string) {
	e.t.Helper()
	s := e.Service(name)
	s.signal(syscall.SIGKILL)
	s.wait(10 * time.Second)
}

// Stop stops the service gracefully (SIGTERM; SIGKILL after 10s).
func (e *Env) Stop(name string) { e.Service(name).Stop(e.t) }

// Resume starts a stopped (or killed) service again with the same port,
// database and environment, and waits until it is ready and registered.
func (e *Env) Resume(name string) {
	e.t.Helper()
	s := e.Service(name)
	if err := s.start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	e.WaitReady(name)
}

// WaitReady waits until the service answers /readyz and is registered.
func (e *Env) WaitReady(name string) {
	e.t.Helper()
	s := e.Service(name)
	if err := e.waitReady(s, ReadyTimeout); err != nil {
		e.t.Fatalf("%s not ready: %v\n%s", name, err, s.Logs())
	}
}

// StartNoWait starts a stopped service again without waiting for readiness
// (for a service expected to exit on its own, see WaitExit).
func (e *Env) StartNoWait(name string) {
	e.t.Helper()
	if err := e.Service(name).start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
}

// WaitExit waits for the service's process to exit by itself and returns its error.
func (e *Env) WaitExit(name string, timeout time.Duration) error {
	e.t.Helper()
	s := e.Service(name)
	if !s.wait(timeout) {
		e.t.Fatalf("%s did not exit within %v", name, timeout)
	}
	return s.err
}

// SetEnv changes one environment variable for the service's next start.
func (e *Env) SetEnv(name, key, value string) {
	s := e.Service(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.env[:0:0]
	for _, kv := range s.env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	if value != "" {
		out = append(out, key+"="+value)
	}
	s.env = out
}

func (e *Env) waitReady(s *Service, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited():
			return fmt.Errorf("exited: %v", s.err)
		default:
		}
		last = func() error {
			resp, err := client.Get(s.URL + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("readyz: %s", resp.Status)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			got, err := e.etcdCli.Get(ctx, registry.ServicePrefix(s.Name), clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				return err
			}
			if got.Count == 0 {
				return fmt.Errorf("not registered")
			}
			return nil
		}()
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

func (e *Env) dumpLogs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, s := range e.svcs {
		e.t.Logf("---- %s logs (tail) ----\n%s", name, s.Logs())
	}
}

// Logs returns the tail of everything the service printed, across restarts.
func (s *Service) Logs() string { return s.logs.Tail(64 << 10) }

func (s *Service) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		select {
		case <-s.done:
		default:
			return fmt.Errorf("already running")
		}
	}
	fmt.Fprintf(s.logs, "==== start %s ====\n", s.Name)
	cmd := exec.Command(s.bin)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	// Own process group, so a kill reaches anything it spawned; and it dies
	// with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	done := make(chan struct{})
	s.done = done
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(done)
	}()
	return nil
}

func (s *Service) exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

func (s *Service) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil || s.done == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	}
}

func (s *Service) wait(timeout time.Duration) bool {
	done := s.exited()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Stop stops the process gracefully (SIGTERM; SIGKILL after 10s).
func (s *Service) Stop(t testing.TB) {
	s.signal(syscall.SIGTERM)
	if !s.wait(10 * time.Second) {
		t.Logf("%s ignored SIGTERM, killing it", s.Name)
		s.signal(syscall.SIGKILL)
		s.wait(10 * time.Second)
	}
}

// hasDatabase reports whether a service keeps a database: it embeds migrations.
// shopSecrets is what the repository's msctl.yaml lists under the
// service's secrets:.
func shopSecrets(t testing.TB, name string) []string {
	t.Helper()
	m, err := manifest.Load(filepath.Join(testenv.RepoRoot(), "msctl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := m.Services[name]; ok {
		return s.Secrets
	}
	return nil
}

func hasDatabase(name string) bool {
	_, err := os.Stat(filepath.Join(testenv.RepoRoot(), "services", name, "migrations"))
	return err == nil
}

func withPoolSize(dsn string, n int) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set("pool_max_conns", fmt.Sprint(n))
	u.RawQuery = q.Encode()
	return u.String()
}

// StartUsersStandIn registers, as the users service, a server publishing
// the test issuer's keys (services/kit/auth/authtest): services check the
// tokens tests sign with authtest.Bearer as they would the real users'.
func (e *Env) StartUsersStandIn() {
	e.t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(authtest.JWKS())
	}))
	e.t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	reg := registry.NewRegistrar(e.etcdCli, registry.Instance{ID: "users-standin", Service: "users", Addr: srv.Listener.Addr().String()},
		2*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		reg.Run(ctx, func(context.Context) error { return nil }, 200*time.Millisecond)
	}()
	e.t.Cleanup(func() { cancel(); <-done })
}
