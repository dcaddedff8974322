package kubernetes_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/testenv"
)

// TestEnvironmentsOnKubernetes: `up --env test` gives the echo pod the
// .env files' variables (through the generated pod template), its secrets
// stay masked in logs and ps and out of the pod specs (they come from the
// service's env Secret), and `up --env dev` replaces the pod with dev's
// environment.
func TestEnvironmentsOnKubernetes(t *testing.T) {
	_, cs := useCluster(t)
	project := uniqueProject()
	ns := gen.DefaultNamespace(project)
	port := testenv.FreePort(t)
	cli := testenv.CLI{Bin: staticMsctl(t), Dir: runtimetest.EnvWorkspace(t, project, port), Timeout: 6 * time.Minute}
	downAtCleanup(t, func() { cli.Run(t, "down", "--volumes") }, cs, ns)
	secrets := runtimetest.CheckEnvironments(t, cli, "kubernetes", port)

	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(pods)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(out), s) {
			t.Errorf("a pod spec in %s holds the secret %q", ns, s)
		}
	}
	if !strings.Contains(string(out), gen.SecretsName("echo")) {
		t.Errorf("no pod of %s reads the Secret %s", ns, gen.SecretsName("echo"))
	}
}
