package local

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"syscall"

	"github.com/msctl/msctl/internal/infra/embetcd"
	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/internal/runtime"
)

// RestartInfra restarts one infra component on the port and data it had:
// Postgres as a new postmaster (after a crash, or stopping the running
// one first), NATS and etcd by stopping and starting the embedded server.
// The endpoints never change, so addresses handed out stay valid.
func (r *Runtime) RestartInfra(ctx context.Context, component string) (runtime.Infra, error) {
	r.restartMu.Lock()
	defer r.restartMu.Unlock()
	r.mu.Lock()
	pg, ns, es := r.pg, r.nats, r.etcd
	r.mu.Unlock()
	if pg == nil {
		return runtime.Infra{}, fmt.Errorf("restart %s: the infra is not running", component)
	}
	var err error
	switch component {
	case runtime.Postgres:
		err = r.restartPostgres(ctx, pg)
	case runtime.Broker:
		err = ns.Restart()
	case runtime.Registry:
		err = r.restartEtcd(es)
	default:
		return runtime.Infra{}, runtime.UnknownInfraError(component)
	}
	if err != nil {
		return runtime.Infra{}, fmt.Errorf("restart %s: %w", component, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.infra, nil
}

func (r *Runtime) restartPostgres(ctx context.Context, old *pgserver.Server) error {
	// A no-op when the postmaster is gone; a fast shutdown when it runs.
	if err := old.Stop(ctx); err != nil {
		r.log.Warn("stop postgres before restart", "err", err)
	}
	// A killed postmaster leaves its backends behind in its process group,
	// attached to the shared memory a new postmaster refuses to share.
	if err := syscall.Kill(-old.PID(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill the old postgres backends: %w", err)
	}
	r.pids.remove(old.PID())
	dataDir, err := r.pgDataDir()
	if err != nil {
		return err
	}
	pg, err := pgserver.Start(ctx, pgserver.Config{DataDir: dataDir, Port: old.Port(), Logs: r.infraLogs})
	if err != nil {
		return err
	}
	start, _, _ := procStat(pg.PID())
	if err := r.pids.add(proc{PID: pg.PID(), PGID: pg.PID(), What: "postgres", Start: start}); err != nil {
		_ = pg.Stop(context.WithoutCancel(ctx))
		return err
	}
	r.mu.Lock()
	r.pg = pg
	r.mu.Unlock()
	return nil
}

// restartEtcd closes the member and starts it again on its client port and
// data. The registry is not cleared as StartInfra does: the services that
// registered still run, and their leases outlive a short restart.
func (r *Runtime) restartEtcd(old *embetcd.Server) error {
	u, err := url.Parse(old.Endpoints()[0])
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return fmt.Errorf("etcd endpoint %s: %w", u, err)
	}
	old.Close()
	es, err := embetcd.Start(embetcd.Config{DataDir: r.etcdDir(), ClientPort: port, Logs: r.infraLogs})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.etcd = es
	r.mu.Unlock()
	return nil
}
