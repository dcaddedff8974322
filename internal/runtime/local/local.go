// Package local is the embedded runtime: services run as host processes
// built with the host's Go toolchain, NATS and etcd run inside this process,
// and Postgres runs from the host's server binaries. Everything lives under
// the workspace's .msctl/ directory, except, for a root-run workspace the
// postgres user cannot reach, the Postgres cluster (see pgDataDir).
//
// Because the broker and registry are embedded, the process that owns a
// local Runtime (the agent) must outlive the workspace being up.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/msctl/msctl/internal/infra/embetcd"
	"github.com/msctl/msctl/internal/infra/embnats"
	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/services/kit/registry"
)

// Name is the runtime's name.
const Name = "local"

// Options configure a local Runtime.
type Options struct {
	// StateDir holds binaries, data and bookkeeping: the workspace's .msctl.
	StateDir string
	// Log receives the infra's own output.
	Log *slog.Logger
	// InfraLogs receives the output of Postgres, NATS and etcd; nil drops it.
	InfraLogs io.Writer
}

// Runtime runs a workspace on this host.
type Runtime struct {
	dir       string
	log       *slog.Logger
	infraLogs io.Writer
	pids      *pidFile

	// restartMu orders RestartInfra against itself and StopInfra, so a
	// restart never brings back what StopInfra stopped.
	restartMu sync.Mutex

	mu      sync.Mutex
	builds  map[string]runtime.BuildSpec
	pg      *pgserver.Server
	nats    *embnats.Server
	etcd    *embetcd.Server
	infra   runtime.Infra
	secrets map[string]string
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a Runtime keeping its state in opts.StateDir.
func New(opts Options) (*Runtime, error) {
	if opts.StateDir == "" {
		return nil, errors.New("local runtime needs a state directory")
	}
	dir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("local runtime: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.InfraLogs == nil {
		opts.InfraLogs = io.Discard
	}
	return &Runtime{
		dir:       dir,
		log:       opts.Log,
		infraLogs: opts.InfraLogs,
		pids:      newPidFile(filepath.Join(dir, "pids.json")),
		builds:    map[string]runtime.BuildSpec{},
	}, nil
}

// Name returns "local".
func (r *Runtime) Name() string { return Name }

func (r *Runtime) binDir() string                { return filepath.Join(r.dir, "bin") }
func (r *Runtime) binPath(service string) string { return filepath.Join(r.binDir(), service) }
func (r *Runtime) pgDir() string                 { return filepath.Join(r.dir, "postgres") }
func (r *Runtime) natsDir() string               { return filepath.Join(r.dir, "nats") }
func (r *Runtime) etcdDir() string               { return filepath.Join(r.dir, "etcd") }
func (r *Runtime) secretsPath() string           { return filepath.Join(r.dir, "secrets.json") }

func (r *Runtime) setBuilt(s runtime.BuildSpec) {
	r.mu.Lock()
	r.builds[s.Name] = s
	r.mu.Unlock()
}

func (r *Runtime) built(name string) (runtime.BuildSpec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.builds[name]
	return b, ok
}

// StartInfra starts Postgres, NATS and etcd in parallel.
func (r *Runtime) StartInfra(ctx context.Context, spec runtime.InfraSpec) (runtime.Infra, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pg != nil {
		return r.infra, nil
	}
	var (
		wg                    sync.WaitGroup
		pg                    *pgserver.Server
		ns                    *embnats.Server
		es                    *embetcd.Server
		pgErr, natsErr, etErr error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		var dataDir string
		if dataDir, pgErr = r.pgDataDir(); pgErr != nil {
			return
		}
		pg, pgErr = pgserver.Start(ctx, pgserver.Config{DataDir: dataDir, Port: spec.PostgresPort, Logs: r.infraLogs})
		if pgErr == nil {
			start, _, _ := procStat(pg.PID())
			pgErr = r.pids.add(proc{PID: pg.PID(), PGID: pg.PID(), What: "postgres", Start: start})
		}
	}()
	go func() {
		defer wg.Done()
		ns, natsErr = embnats.Start(embnats.Config{StoreDir: r.natsDir(), Port: spec.BrokerPort, Logs: r.infraLogs})
	}()
	go func() {
		defer wg.Done()
		es, etErr = embetcd.Start(embetcd.Config{DataDir: r.etcdDir(), ClientPort: spec.RegistryPort, Logs: r.infraLogs})
		if etErr == nil {
			etErr = clearRegistry(ctx, es.Endpoints())
		}
	}()
	wg.Wait()
	if err := errors.Join(wrap("postgres", pgErr), wrap("nats", natsErr), wrap("etcd", etErr)); err != nil {
		if pg != nil {
			_ = pg.Stop(context.WithoutCancel(ctx))
			r.pids.remove(pg.PID())
		}
		if ns != nil {
			ns.Shutdown()
		}
		if es != nil {
			es.Close()
		}
		return runtime.Infra{}, err
	}
	r.pg, r.nats, r.etcd = pg, ns, es
	ep := runtime.Endpoints{
		Postgres: "127.0.0.1:" + strconv.Itoa(pg.Port()),
		NATSURL:  ns.URL(),
		Etcd:     es.Endpoints(),
	}
	if spec.OTLPHostAddr != "" {
		ep.OTLP = "http://" + spec.OTLPHostAddr
	}
	// Services run on the host: they see what the host sees.
	r.infra = runtime.Infra{Host: ep, Services: ep}
	return r.infra, nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("start %s: %w", what, err)
}

// EnsureDatabase creates the service's database and role, with a password
// generated once and kept in .msctl/secrets.json (mode 0600).
func (r *Runtime) EnsureDatabase(ctx context.Context, service string) (string, error) {
	r.mu.Lock()
	pg := r.pg
	pw, err := r.passwordLocked(service)
	r.mu.Unlock()
	if err != nil {
		return "", err
	}
	if pg == nil {
		return "", errors.New("ensure database: infra is not running")
	}
	dsn, err := pg.EnsureDatabase(ctx, service, service, pw)
	if err != nil {
		return "", fmt.Errorf("ensure database %s: %w", service, err)
	}
	return dsn, nil
}

func (r *Runtime) passwordLocked(service string) (string, error) {
	if r.secrets == nil {
		r.secrets = map[string]string{}
		data, err := os.ReadFile(r.secretsPath())
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return "", fmt.Errorf("read secrets: %w", err)
		default:
			if err := json.Unmarshal(data, &r.secrets); err != nil {
				return "", fmt.Errorf("read %s: %w (delete it to generate new passwords)", r.secretsPath(), err)
			}
		}
	}
	if pw, ok := r.secrets[service]; ok {
		return pw, nil
	}
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	r.secrets[service] = hex.EncodeToString(b)
	data, err := json.MarshalIndent(r.secrets, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(r.secretsPath(), data, 0o600); err != nil {
		return "", fmt.Errorf("save secrets: %w", err)
	}
	return r.secrets[service], nil
}

// StopInfra stops etcd, NATS and Postgres, in parallel.
func (r *Runtime) StopInfra(ctx context.Context, grace time.Duration) error {
	r.restartMu.Lock()
	defer r.restartMu.Unlock()
	r.mu.Lock()
	pg, ns, es := r.pg, r.nats, r.etcd
	r.pg, r.nats, r.etcd = nil, nil, nil
	r.mu.Unlock()
	var wg sync.WaitGroup
	var pgErr error
	if pg != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, grace)
			defer cancel()
			pgErr = pg.Stop(sctx)
			r.pids.remove(pg.PID())
		}()
	}
	if ns != nil {
		wg.Add(1)
		go func() { defer wg.Done(); ns.Shutdown() }()
	}
	if es != nil {
		wg.Add(1)
		go func() { defer wg.Done(); es.Close() }()
	}
	wg.Wait()
	if pgErr != nil {
		return fmt.Errorf("stop postgres: %w", pgErr)
	}
	return nil
}

// reapGrace is how long leftovers of a dead agent get to stop by themselves.
const reapGrace = 5 * time.Second

// Cleanup stops processes recorded by a previous run that are still ours,
// and with volumes removes the data of Postgres, NATS and etcd and the
// database passwords. Built binaries stay: they are a cache, not data.
func (r *Runtime) Cleanup(ctx context.Context, volumes bool) error {
	if err := r.pids.reap(reapGrace); err != nil {
		return fmt.Errorf("stop leftover processes: %w", err)
	}
	if !volumes {
		return nil
	}
	r.mu.Lock()
	running := r.pg != nil
	r.secrets = nil
	r.mu.Unlock()
	if running {
		return errors.New("remove data: infra is still running")
	}
	errs := []error{r.removePGData()}
	for _, p := range []string{r.natsDir(), r.etcdDir(), r.secretsPath()} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// clearRegistry drops every registration kept in the etcd data. Each process
// of an earlier run was reaped before infra starts, but its keys survive in
// the data with their leases renewed by the restart, so for a whole TTL the
// gateway would route to instances that no longer exist.
func clearRegistry(ctx context.Context, endpoints []string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("clear registry: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, registry.Prefix, clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("clear registry: %w", err)
	}
	return nil
}
