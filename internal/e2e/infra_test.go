package e2e

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/runtime/local"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// registryTTL is the services' lease (REGISTRY_TTL's default): a key still
// there this long after an infra restart lives on a lease granted since.
const registryTTL = 5 * time.Second

// TestCrashedPostgresIsRestarted: kill -9 of the workspace's Postgres is
// noticed and repaired by the agent within seconds, counted in ps, and the
// services come back ready and registered by themselves: an order placed
// afterwards goes through.
func TestCrashedPostgresIsRestarted(t *testing.T) {
	ensureUp(t)
	before := component(shop.PS(t), "postgres")
	pid := postgresPID(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	testenv.Until(t, 30*time.Second, "postgres restarted", func() bool {
		pg := component(shop.PS(t), "postgres")
		return pg.Restarts == before.Restarts+1 && pg.State == state.StateHealthy
	})
	t.Logf("postgres healthy again %s after kill -9", time.Since(killed).Round(time.Millisecond))
	if postgresPID(t) == pid {
		t.Error("pids.json still names the killed postmaster")
	}
	waitRecovered(t, client(t))
	placeOrder(t)
}

// TestRestartBrokerAndRegistry: `msctl restart nats` and `msctl restart
// etcd` restart the embedded servers on their ports and data; services
// reconnect, stay registered (past their old leases) and messages flow.
func TestRestartBrokerAndRegistry(t *testing.T) {
	ensureUp(t)
	c := client(t)
	for _, name := range []string{"nats", "etcd"} {
		before := component(shop.PS(t), name)
		shop.Must(t, "restart", name)
		restarted := time.Now()
		if got := component(shop.PS(t), name); got.Restarts != before.Restarts+1 || got.State != state.StateHealthy || got.Endpoint != before.Endpoint {
			t.Errorf("%s after restart: %+v, want healthy on %s with %d restarts", name, got, before.Endpoint, before.Restarts+1)
		}
		time.Sleep(time.Until(restarted.Add(registryTTL + time.Second)))
		waitRecovered(t, c)
		placeOrder(t)
	}
}

// postgresPID is the postmaster's pid as the local runtime recorded it.
func postgresPID(t *testing.T) int {
	t.Helper()
	procs, err := local.Orphans(filepath.Join(shop.Dir, ".msctl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Name == "postgres" {
			return p.PID
		}
	}
	t.Fatalf("no live postgres recorded: %+v", procs)
	return 0
}

// waitRecovered waits until every component is healthy and every service
// registered, with no manual step.
func waitRecovered(t *testing.T, c *agent.Client) {
	t.Helper()
	testenv.Until(t, 60*time.Second, "every component healthy and every service registered", func() bool {
		s, err := c.Snapshot(t.Context())
		if err != nil {
			return false
		}
		for _, comp := range s.Components {
			if comp.State != state.StateHealthy || comp.Kind == state.KindService && len(s.Registry[comp.Name]) == 0 {
				return false
			}
		}
		return true
	})
}

// placeOrder places an order through the gateway and waits until the saga
// confirmed it: every service, the database and the broker work.
func placeOrder(t *testing.T) {
	t.Helper()
	token, _ := signup(t)
	p := gateway(t).InStock(1)
	id := gateway(t).PlaceOrder(token, p.ID, testenv.GoodCard, 1, nil)
	if o := gateway(t).Settle(token, id, 60*time.Second); o.Status != "CONFIRMED" {
		t.Errorf("order after the restart: %+v, want CONFIRMED", o)
	}
}
