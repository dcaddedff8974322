package kubernetes_test

import (
	"testing"
	"time"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/testenv"
)

// TestEnvironmentsOnKubernetes: `up --env test` gives the echo pod the
// .env files' variables (through the generated pod template), its secrets
// stay masked in logs and ps, and `up --env dev` replaces the pod with
// dev's environment.
func TestEnvironmentsOnKubernetes(t *testing.T) {
	_, cs := useCluster(t)
	project := uniqueProject()
	port := testenv.FreePort(t)
	cli := testenv.CLI{Bin: staticMsctl(t), Dir: runtimetest.EnvWorkspace(t, project, port), Timeout: 6 * time.Minute}
	downAtCleanup(t, func() { cli.Run(t, "down", "--volumes") }, cs, gen.DefaultNamespace(project))
	runtimetest.CheckEnvironments(t, cli, "kubernetes", port)
}
