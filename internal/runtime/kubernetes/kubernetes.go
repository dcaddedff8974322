// Package kubernetes runs a workspace on a Kubernetes cluster through
// client-go: the kubeconfig's current context (or a named one), one
// namespace per workspace, every object from the one generator
// (internal/k8s/gen) that `msctl export k8s` also writes.
//
// How the instance-oriented Runtime interface maps onto the cluster:
//
//   - StartInfra server-side applies the generator's infra objects
//     (StatefulSets, Services, Secrets, NetworkPolicies, the collector),
//     waits until their pods are ready, and returns host endpoints that are
//     port-forwards held by this Runtime (one SPDY stream through the API
//     server per connection, resolved to the current pod each time, so a
//     replaced pod is followed) and service endpoints that are in-cluster
//     DNS names.
//   - EnsureDatabase applies the service's Secret and provisioning Job and
//     waits for the Job.
//   - Start runs one instance as one Pod made from the generator's
//     Deployment pod template (same image, env, probes, security context),
//     named after the instance, restartPolicy Never. The orchestrator
//     already supervises instances for every runtime (replicas, restarts,
//     rolling restart); a Deployment controller would fight it over which
//     pods exist. The Deployments themselves are what `export k8s` ships.
//   - Stop deletes the pod with the grace period; Done closes once its
//     container terminated (Exit carries the code) or the pod is gone.
//   - Cleanup deletes the namespace with volumes; without, it deletes
//     everything but the PersistentVolumeClaims and the Secrets whose
//     passwords the kept data was initialised with.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/runtime"
)

// Name is the runtime's name, as --runtime takes it.
const Name = "kubernetes"

// EnvContainerdSock names the containerd socket of a local cluster's node,
// where images are imported instead of pushed to a registry.
const EnvContainerdSock = "MSCTL_K8S_CONTAINERD_SOCK"

// apiTimeout bounds every single API request: an unreachable cluster must
// answer within seconds, not hang `up`.
const apiTimeout = 10 * time.Second

// Options configure a Runtime. The caller translates msctl.yaml (the
// runtime never reads it): Spec is gen.FromManifest's, Dir, Context and
// Registry are msctl.yaml's directory and kubernetes.{context,registry}.
type Options struct {
	// Spec is the workspace as the generator takes it. Its passwords are
	// ignored: the runtime fills in those the cluster keeps from an earlier
	// run (or draws them), and the images Build made. An empty Namespace
	// is msctl-<project>.
	Spec gen.Spec
	// Dir is the workspace's directory, which service paths are relative to.
	Dir string
	Log *slog.Logger
	// Kubeconfig is the kubeconfig file; empty uses KUBECONFIG or
	// ~/.kube/config as kubectl does.
	Kubeconfig string
	// Context is the kubeconfig context; empty uses the current one.
	Context string
	// ContainerdSock is the node's containerd socket images are imported
	// into; empty uses MSCTL_K8S_CONTAINERD_SOCK, and when that is empty too
	// the cluster pulls images itself: Build pushes the services' to
	// Registry.
	ContainerdSock string
	// Registry is where the cluster pulls service images from (host[:port]
	// [/path]) when there is no node containerd to import them into.
	Registry string
	// CollectorBinary is a static msctl executable run as the in-cluster
	// OTLP collector (`msctl agent collect`) that services export to, and as
	// the chaos proxy (`msctl agent chaos-proxy`); empty runs neither:
	// services then export nowhere and dial directly.
	CollectorBinary string
}

// Runtime runs one workspace on a Kubernetes cluster.
type Runtime struct {
	cs kubernetes.Interface
	// stream is cs without the request timeout, for what lasts as long as
	// an instance: followed logs and watches.
	stream  kubernetes.Interface
	dyn     dynamic.Interface
	rest    *rest.Config
	base    gen.Spec // Options.Spec, without passwords
	opts    Options
	ns      string
	context string // kubeconfig context, for error messages
	log     *slog.Logger
	images  *images

	// ctx outlives every call: instance watchers and log followers run on
	// it until Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	collector string            // the collector's image, once loaded
	chaos     chaosState        // chaos.go
	built     map[string]string // service → image
	dbs       map[string]string // service → database password
	adminPW   string
	infra     *runtime.Infra
	forwards  []*forwarder
	preflight error
	checked   bool
}

var (
	_ runtime.Runtime   = (*Runtime)(nil)
	_ runtime.ChaosHost = (*Runtime)(nil)
)

// New connects to the cluster the kubeconfig names. It fails at once when
// there is no kubeconfig; reachability and permissions are checked on first
// use, within seconds (see check).
func New(opts Options) (*Runtime, error) {
	if opts.Spec.Project == "" {
		return nil, errors.New("kubernetes runtime needs the workspace's project")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ContainerdSock == "" {
		opts.ContainerdSock = os.Getenv(EnvContainerdSock)
	}
	cfg, kctx, err := restConfig(opts.Kubeconfig, opts.Context)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	streamCfg := rest.CopyConfig(cfg)
	streamCfg.Timeout = 0
	stream, err := kubernetes.NewForConfig(streamCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ns := opts.Spec.Namespace
	if ns == "" {
		ns = gen.DefaultNamespace(opts.Spec.Project)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cs: cs, stream: stream, dyn: dyn, rest: cfg, base: opts.Spec, opts: opts, ns: ns, context: kctx,
		log: opts.Log.With("runtime", Name), ctx: ctx, cancel: cancel,
		built: map[string]string{}, dbs: map[string]string{},
	}
	r.images = &images{sock: opts.ContainerdSock, registry: opts.Registry}
	return r, nil
}

// restConfig loads the kubeconfig as kubectl does, with a short request
// timeout so that an unreachable cluster fails fast.
func restConfig(kubeconfig, kctx string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kctx})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, "", fmt.Errorf("read kubeconfig: %w", err)
	}
	name := kctx
	if name == "" {
		name = raw.CurrentContext
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", kubeconfigError(err, kctx, rules.GetLoadingPrecedence())
	}
	cfg.Timeout = apiTimeout
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, name, nil
}

// Name is "kubernetes".
func (r *Runtime) Name() string { return Name }

// Namespace is the workspace's namespace.
func (r *Runtime) Namespace() string { return r.ns }

// Close stops following pods and closes the port-forwards. Pods keep
// running: stopping them is Stop's, StopInfra's and Cleanup's business.
func (r *Runtime) Close() error {
	r.cancel()
	r.closeForwards()
	return nil
}

// check verifies once that the cluster answers and that the kubeconfig's
// user may do what the runtime does, so that both fail with the fix instead
// of half-way through `up`.
func (r *Runtime) check(ctx context.Context) error {
	r.mu.Lock()
	if r.checked {
		err := r.preflight
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()
	err := r.reachable(ctx)
	if err == nil {
		err = r.permitted(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// A cancelled context says nothing about the cluster: ask again.
	if ctx.Err() == nil {
		r.checked, r.preflight = true, err
	}
	return err
}
