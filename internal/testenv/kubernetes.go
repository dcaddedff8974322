package testenv

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// KubernetesEnvFile is where `make k8s-up` (.ci) records the test cluster it started:
// KEY=VALUE lines (an optional leading "export" is accepted) naming its kubeconfig and the
// socket of the cluster's own containerd.
const KubernetesEnvFile = "/var/tmp/msctl-k8s/env"

// Variables of the cluster env file; each may also be set in the process environment,
// which wins over the file so a developer can point the tests at another cluster.
const (
	EnvK8sKubeconfig     = "MSCTL_K8S_KUBECONFIG"
	EnvK8sContainerdSock = "MSCTL_K8S_CONTAINERD_SOCK"
)

// KubernetesEnv is the test cluster's env file merged with the process environment. A
// missing file yields only what the environment sets.
func KubernetesEnv() map[string]string {
	env := map[string]string{}
	if f, err := os.Open(KubernetesEnvFile); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			line = strings.TrimPrefix(line, "export ")
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			env[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	for _, k := range []string{EnvK8sKubeconfig, EnvK8sContainerdSock} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}

// RequireKubernetes returns the kubeconfig of the test cluster, skipping the test when
// there is none, or failing it when CI is set: CI starts the cluster (make k8s-up), so a
// missing one there is a broken run, not a reason to test less.
func RequireKubernetes(t testing.TB) (kubeconfig string) {
	t.Helper()
	kubeconfig = KubernetesEnv()[EnvK8sKubeconfig]
	if kubeconfig == "" {
		unavailable(t, "kubernetes unavailable: neither %s nor %s sets %s (run `make k8s-up`)",
			KubernetesEnvFile, EnvK8sKubeconfig, EnvK8sKubeconfig)
	}
	if _, err := os.Stat(kubeconfig); err != nil {
		unavailable(t, "kubernetes unavailable: kubeconfig %s: %v (run `make k8s-up`)", kubeconfig, err)
	}
	return kubeconfig
}

// KubernetesContainerdSock is the socket of the test cluster's containerd, where images are
// loaded without a registry. It fails (or skips outside CI) like RequireKubernetes when the
// cluster env names none.
func KubernetesContainerdSock(t testing.TB) string {
	t.Helper()
	sock := KubernetesEnv()[EnvK8sContainerdSock]
	if sock == "" {
		unavailable(t, "kubernetes unavailable: no %s in %s or the environment (run `make k8s-up`)",
			EnvK8sContainerdSock, KubernetesEnvFile)
	}
	return sock
}

// KubernetesUnavailable skips the test, or fails it when CI is set, for a
// test cluster that lacks what the test needs.
func KubernetesUnavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	unavailable(t, format, args...)
}
