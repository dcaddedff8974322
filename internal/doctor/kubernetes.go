package doctor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
)

// CheckKubernetes reports the kubeconfig's current context and whether its
// API server answers. Only `up --runtime kubernetes` needs it, so a failure
// never decides doctor's exit code.
const CheckKubernetes = "kubernetes"

// kubeTimeout bounds the API server probe: an unreachable cluster must
// answer within seconds, not hang doctor.
const kubeTimeout = 3 * time.Second

// KubeInfo is what the kubernetes probe found.
type KubeInfo struct {
	Context string // the kubeconfig's current context
	Server  string // its API server URL
	Version string // the API server's version, empty when it did not answer
}

// ErrNoKubeconfig is returned by the kubernetes probe when no kubeconfig
// names a current context.
var ErrNoKubeconfig = errors.New("no kubeconfig with a current context (KUBECONFIG, or ~/.kube/config)")

const kubeconfigFix = "only the kubernetes runtime needs one: point KUBECONFIG at a cluster's kubeconfig " +
	"(kind, k3d, or a cloud cluster's), or select a context with kubectl config use-context NAME"

func checkKubernetes(ctx context.Context, env Env) Result {
	info, err := env.Kubernetes(ctx)
	switch {
	case errors.Is(err, ErrNoKubeconfig):
		return Result{Name: CheckKubernetes, Detail: err.Error(), Fix: kubeconfigFix}
	case err != nil && info.Context == "":
		return Result{Name: CheckKubernetes, Detail: err.Error(), Fix: "fix the kubeconfig (kubectl config view shows what it holds); " + kubeconfigFix}
	case err != nil:
		return Result{
			Name:   CheckKubernetes,
			Detail: fmt.Sprintf("context %s: API server %s: %v", info.Context, info.Server, err),
			Fix:    "start the cluster, check the network path to " + info.Server + ", or switch context (kubectl config use-context NAME)",
		}
	}
	return Result{Name: CheckKubernetes, OK: true, Detail: fmt.Sprintf("context %s, API server %s answers (Kubernetes %s)", info.Context, info.Server, info.Version)}
}

// probeKubernetes reads the kubeconfig the way kubectl does (KUBECONFIG,
// else ~/.kube/config) and asks the current context's API server for its
// version, within kubeTimeout.
func probeKubernetes(ctx context.Context) (KubeInfo, error) {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	raw, err := cc.RawConfig()
	if err != nil {
		return KubeInfo{}, fmt.Errorf("read kubeconfig: %w", err)
	}
	if raw.CurrentContext == "" {
		return KubeInfo{}, ErrNoKubeconfig
	}
	info := KubeInfo{Context: raw.CurrentContext}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return info, fmt.Errorf("context %s: %w", info.Context, err)
	}
	info.Server = cfg.Host
	cfg.Timeout = kubeTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return info, err
	}
	done := make(chan error, 1)
	go func() {
		v, err := dc.ServerVersion()
		if err == nil {
			info.Version = v.GitVersion
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return KubeInfo{Context: info.Context, Server: info.Server}, fmt.Errorf("no answer: %w", err)
		}
		return info, nil
	case <-ctx.Done():
		return KubeInfo{Context: info.Context, Server: info.Server}, ctx.Err()
	}
}
