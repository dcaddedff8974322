package docker_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
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
	testenv.RequireDocker(t)
	testenv.SkipShort(t, "system test")
	project := uniqueProject(t)
	shop := testenv.NewShop(t, "", project)
	t.Cleanup(func() { testenv.RemoveDockerWorkspace(t, project) })
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, project)
		}
	})
	agent(t, filepath.Join(shop.Dir, manifest.FileName))

	kill := durability.Fault{Name: "kill-payments-container", Inject: func(t *testing.T) {
		old := ps(t, project)["payments"]
		testenv.Exec(t, time.Minute, "", "docker", "kill", old.Container).Must(t)
		testenv.Until(t, 2*time.Minute, "payments replaced and healthy", func() bool {
			c := ps(t, project)["payments"]
			return c.Container != old.Container && c.State == state.StateHealthy
		})
	}}
	durability.Drive(t, shop.Gateway(t).Base, superuserDSN(t, project),
		durability.Load{Clients: 8, Orders: 64, Rate: 16, Within: 2 * time.Minute},
		durability.Check{Final: 90 * time.Second, Settle: 30 * time.Second}, kill)
}

// superuserDSN reaches each service's database as the superuser, whose
// password the runtime keeps as a label of the Postgres volume, on the
// port Docker published.
func superuserDSN(t *testing.T, project string) durability.DSN {
	return func(ctx context.Context, service string) (string, error) {
		pw := testenv.Exec(t, time.Minute, "", "docker", "volume", "inspect", "--format", `{{index .Labels "dev.msctl.pg-password"}}`,
			"msctl-"+project+"-postgres-data").Must(t).Stdout
		ep := ps(t, project)["postgres"].Endpoint
		if strings.TrimSpace(pw) == "" || ep == "" {
			return "", fmt.Errorf("no superuser password label (%q) or no published postgres port (%q)", pw, ep)
		}
		return fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable", strings.TrimSpace(pw), ep, service), nil
	}
}
