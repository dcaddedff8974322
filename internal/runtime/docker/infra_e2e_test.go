package docker_test

import (
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// TestKilledPostgresContainerIsRestarted: `docker kill` of the workspace's
// Postgres under the msctl binary's agent is repaired by the agent: a new
// container on the same volume and host port, one restart in ps, the order
// written before still there and a new one confirmed, no manual step.
func TestKilledPostgresContainerIsRestarted(t *testing.T) {
	shop, project := upDockerShop(t)
	c := gateway(t, shop)
	token := c.login("infra@example.com")
	first := c.PlaceOrder(token, testenv.Keyboard, testenv.GoodCard, 1, nil)
	if o := c.settle(token, first); o.Status != "CONFIRMED" {
		t.Fatalf("order before the crash: %+v", o)
	}

	before := shop.Components(t)["postgres"]
	if err := engine(t).ContainerKill(t.Context(), "msctl-"+project+"-postgres", "KILL"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	testenv.Until(t, 90*time.Second, "postgres restarted by the agent", func() bool {
		pg := shop.Components(t)["postgres"]
		return pg.Restarts == before.Restarts+1 && pg.State == state.StateHealthy
	})
	t.Logf("postgres healthy again %s after docker kill", time.Since(killed).Round(time.Millisecond))
	if after := shop.Components(t)["postgres"]; after.Endpoint != before.Endpoint {
		t.Errorf("postgres endpoint %s after the restart, want the same %s", after.Endpoint, before.Endpoint)
	}
	testenv.Until(t, 90*time.Second, "every component healthy", func() bool {
		for _, comp := range shop.PS(t) {
			if comp.State != state.StateHealthy {
				return false
			}
		}
		return true
	})
	if o := c.settle(token, first); o.Status != "CONFIRMED" {
		t.Errorf("the order written before the crash reads %+v", o)
	}
	second := c.PlaceOrder(token, testenv.Keyboard, testenv.GoodCard, 1, nil)
	if o := c.settle(token, second); o.Status != "CONFIRMED" {
		t.Errorf("order after the restart: %+v", o)
	}
}
