package docker_test

import (
	"testing"

	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/testenv"
)

// TestEnvironmentsOnDocker: `up --env test` gives the echo container the
// .env files' variables, its secrets stay masked in logs and ps, and
// `up --env dev` replaces it with dev's environment.
func TestEnvironmentsOnDocker(t *testing.T) {
	testenv.RequireDocker(t)
	testenv.SkipShort(t, "system test")
	project := uniqueProject(t)
	port := testenv.FreePort(t)
	cli := testenv.CLI{Bin: testenv.Msctl(t), Dir: runtimetest.EnvWorkspace(t, project, port)}
	t.Cleanup(func() { testenv.RemoveDockerWorkspace(t, project) })
	cli.DownAtCleanup(t)
	runtimetest.CheckEnvironments(t, cli, "docker", port)
}
