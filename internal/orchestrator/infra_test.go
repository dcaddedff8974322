package orchestrator

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// fakeInfra is the fake runtime's infra: a loopback listener per component
// that accepts and hangs up, so supervision's probes reach something and
// closing one is a crash. A restart listens on a new port, as a docker
// container published on a new one would.
type fakeInfra struct {
	mu   sync.Mutex
	otlp string
	ls   map[string]net.Listener
}

func (fi *fakeInfra) start(otlp string) runtime.Infra {
	fi.mu.Lock()
	fi.otlp = otlp
	fi.mu.Unlock()
	for _, n := range runtime.InfraComponents {
		fi.listen(n)
	}
	return fi.endpoints()
}

func (fi *fakeInfra) listen(name string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	fi.mu.Lock()
	defer fi.mu.Unlock()
	if fi.ls == nil {
		fi.ls = map[string]net.Listener{}
	}
	if old := fi.ls[name]; old != nil {
		old.Close()
	}
	fi.ls[name] = l
}

func (fi *fakeInfra) endpoints() runtime.Infra {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	addr := func(n string) string { return fi.ls[n].Addr().String() }
	return runtime.Infra{
		Host: runtime.Endpoints{
			Postgres: addr(runtime.Postgres), NATSURL: "nats://" + addr(runtime.Broker),
			Etcd: []string{"http://" + addr(runtime.Registry)}, OTLP: fi.otlp,
		},
		// As containers see them: by name, the same across restarts.
		Services: runtime.Endpoints{Postgres: "pg:5432", NATSURL: "nats://nats:4222", Etcd: []string{"http://etcd:2379"}, OTLP: fi.otlp},
	}
}

func (fi *fakeInfra) crash(name string) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.ls[name].Close()
}

func (fi *fakeInfra) stop() {
	for _, n := range runtime.InfraComponents {
		fi.crash(n)
	}
}

func (f *fakeRuntime) RestartInfra(ctx context.Context, name string) (runtime.Infra, error) {
	if !slices.Contains(runtime.InfraComponents, name) {
		return runtime.Infra{}, runtime.UnknownInfraError(name)
	}
	f.record("restart " + name)
	f.infra.listen(name)
	return f.infra.endpoints(), nil
}

func psOf(o *Orchestrator, name string) state.Component {
	for _, c := range o.Ps() {
		if c.Name == name {
			return c
		}
	}
	return state.Component{}
}

// TestCrashedInfraIsRestarted: a component that stops answering is
// restarted through the runtime after a few probes, counted, healthy
// again, and its new endpoint is what Infra and Ps answer from then on.
func TestCrashedInfraIsRestarted(t *testing.T) {
	f, o := upShop(t)
	before, _ := o.Infra()
	f.infra.crash(runtime.Postgres)
	crashed := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for c := psOf(o, runtime.Postgres); c.Restarts != 1 || c.State != state.StateHealthy; c = psOf(o, runtime.Postgres) {
		if time.Now().After(deadline) {
			t.Fatalf("postgres = %+v 15s after its crash, want healthy with 1 restart", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(crashed)
	if took < infraFailsToRestart*infraProbe-infraProbe {
		t.Errorf("restarted %s after the crash: before the probes failed in a row", took)
	}
	after, _ := o.Infra()
	if after.Host.Postgres == before.Host.Postgres || after.Host.Postgres != f.infra.endpoints().Host.Postgres {
		t.Errorf("Infra().Host.Postgres = %s after the restart, want the runtime's new %s (was %s)", after.Host.Postgres, f.infra.endpoints().Host.Postgres, before.Host.Postgres)
	}
	if ep := psOf(o, runtime.Postgres).Endpoint; ep != after.Host.Postgres {
		t.Errorf("ps endpoint = %s, want %s", ep, after.Host.Postgres)
	}
	if n := strings.Count(strings.Join(f.events(), "\n"), "restart "); n != 1 {
		t.Errorf("events %v: want exactly one infra restart", f.events())
	}
	if c := psOf(o, runtime.Broker); c.Restarts != 0 || c.State != state.StateHealthy {
		t.Errorf("nats = %+v, want untouched", c)
	}
}

// TestRestartInfraByName: Restart takes infra components too; an unknown
// name lists services and infra.
func TestRestartInfraByName(t *testing.T) {
	f, o := upShop(t)
	if err := o.Restart(t.Context(), runtime.Registry); err != nil {
		t.Fatal(err)
	}
	if c := psOf(o, runtime.Registry); c.Restarts != 1 || c.State != state.StateHealthy {
		t.Errorf("etcd after restart = %+v, want healthy with 1 restart", c)
	}
	if !slices.Contains(f.events(), "restart etcd") {
		t.Errorf("events %v: no etcd restart", f.events())
	}
	err := o.Restart(t.Context(), "redis")
	if !errors.Is(err, ErrUnknownComponent) || !strings.Contains(err.Error(), "services: ") || !strings.Contains(err.Error(), "infra: postgres, nats, etcd") {
		t.Errorf("Restart(redis) = %v, want ErrUnknownComponent listing services and infra", err)
	}
}
