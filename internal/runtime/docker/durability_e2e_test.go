package docker_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/internal/testenv/durability"
)

// TestDurabilityKilledContainer is the durability suite's kill on Docker:
// orders flow through the shop in containers while the payments container
// is killed (SIGKILL); the agent replaces it, and every order ends final,
// paid once, with its stock, listing and notification right.
func TestDurabilityKilledContainer(t *testing.T) {
	shop, project := dockerShop(t)
	agent(t, filepath.Join(shop.Dir, manifest.FileName))

	kill := durability.Fault{Name: "kill-payments-container", Inject: func(t *testing.T) {
		old := ps(t, project)["payments"]
		if err := engine(t).ContainerKill(t.Context(), old.Container, "KILL"); err != nil {
			t.Fatal(err)
		}
		testenv.Until(t, 2*time.Minute, "payments replaced and healthy", func() bool {
			c := ps(t, project)["payments"]
			return c.Container != old.Container && c.State == state.StateHealthy
		})
	}}
	durability.Drive(t, shop.Gateway(t).Base, superuserDSN(t, project),
		durability.Load{Clients: 8, Orders: 64, Rate: 16, Within: 2 * time.Minute},
		durability.Check{Final: 90 * time.Second, Settle: 30 * time.Second}, kill)
}

// dockerShop is a copy of the shop for a test on Docker, under a project
// of its own that is removed, with everything Docker holds of it, when the
// test ends; a failed test shows the containers' last output first.
func dockerShop(t *testing.T) (testenv.Shop, string) {
	t.Helper()
	return newDockerShop(t, false)
}

// upDockerShop is dockerShop run by the msctl binary: up on Docker under
// the binary's agent, and down with its volumes when the test ends, after
// a failed test's logs.
func upDockerShop(t *testing.T) (testenv.Shop, string) {
	t.Helper()
	shop, project := newDockerShop(t, true)
	shop.Must(t, "up", "-d", "--runtime", "docker")
	return shop, project
}

func newDockerShop(t *testing.T, withBinary bool) (testenv.Shop, string) {
	t.Helper()
	testenv.RequireDocker(t)
	testenv.SkipShort(t, "system test")
	project := uniqueProject(t)
	bin := ""
	if withBinary {
		bin = testenv.Msctl(t)
	}
	shop := testenv.NewShop(t, bin, project)
	t.Cleanup(func() { testenv.RemoveDockerWorkspace(t, project) })
	if withBinary {
		shop.DownAtCleanup(t)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, project)
		}
	})
	return shop, project
}

// superuserDSN reaches each service's database as the superuser, whose
// password the runtime keeps as a label of the Postgres volume, on the
// port Docker published.
func superuserDSN(t *testing.T, project string) durability.DSN {
	return func(ctx context.Context, service string) (string, error) {
		vol, err := engine(t).VolumeInspect(ctx, "msctl-"+project+"-postgres-data")
		if err != nil {
			return "", err
		}
		pw, ep := vol.Labels["dev.msctl.pg-password"], ps(t, project)["postgres"].Endpoint
		if pw == "" || ep == "" {
			return "", fmt.Errorf("no superuser password label on %s or no published postgres port (%q)", vol.Name, ep)
		}
		return fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable", pw, ep, service), nil
	}
}
