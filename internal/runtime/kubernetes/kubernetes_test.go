package kubernetes_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/kubernetes"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/testenv"
)

// echoWorkspace writes a manifest with the conformance suite's echo
// service, under a project no other test uses.
func echoWorkspace(t testing.TB) *manifest.Manifest {
	return runtimetest.EchoWorkspace(t, uniqueProject())
}

// uniqueProject names a workspace no other test (or person) uses.
func uniqueProject() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "k" + hex.EncodeToString(b)
}

// options translates m as the CLI's factory does.
func options(t testing.TB, m *manifest.Manifest) kubernetes.Options {
	t.Helper()
	spec, err := gen.FromManifest(m, gen.Options{Password: func(string) (string, error) { return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.Options{Spec: spec, Dir: m.Dir(), Context: m.Kubernetes.Context, Registry: m.Kubernetes.Registry}
}

// newRuntime returns a Runtime on the test cluster whose namespace is
// deleted when the test ends.
func newRuntime(t testing.TB, m *manifest.Manifest) *kubernetes.Runtime {
	t.Helper()
	kubeconfig := testenv.RequireKubernetes(t)
	testenv.RequireDocker(t) // service images are built by the local engine
	opts := options(t, m)
	opts.Kubeconfig, opts.ContainerdSock, opts.CollectorBinary = kubeconfig, testenv.KubernetesContainerdSock(t), staticMsctl(t)
	rt, err := kubernetes.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// The first import of the infra images into the node outlasts the
	// suite's own deadline; later runs find them there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := rt.LoadInfraImages(ctx); err != nil {
		t.Fatal(err)
	}
	removeAtCleanup(t, rt)
	return rt
}

// removeAtCleanup removes everything rt made, namespace included, when
// the test ends.
func removeAtCleanup(t testing.TB, rt *kubernetes.Runtime) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := rt.Cleanup(ctx, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = rt.Close()
	})
}

// useCluster points the msctl binary a test runs at the test cluster (its
// kubeconfig and node containerd, through the environment) and returns a
// client of the cluster.
func useCluster(t *testing.T) (kubeconfig string, cs k8s.Interface) {
	kubeconfig = testenv.RequireKubernetes(t)
	testenv.RequireDocker(t)
	t.Setenv("KUBECONFIG", kubeconfig)
	t.Setenv(kubernetes.EnvContainerdSock, testenv.KubernetesContainerdSock(t))
	return kubeconfig, clientset(t, kubeconfig)
}

// downAtCleanup runs `down --volumes` when the test ends and deletes the
// namespace itself should down have failed to.
func downAtCleanup(t *testing.T, down func(), cs k8s.Interface, ns string) {
	t.Cleanup(func() {
		down()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
}

var (
	staticOnce sync.Once
	staticDir  string
	staticBin  string
	staticErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if staticDir != "" {
		_ = os.RemoveAll(staticDir)
	}
	os.Exit(code)
}

// staticMsctl builds the collector's msctl once per test binary.
func staticMsctl(t testing.TB) string {
	t.Helper()
	staticOnce.Do(func() {
		staticDir, staticErr = os.MkdirTemp("", "msctl-static-")
		if staticErr != nil {
			return
		}
		staticBin = filepath.Join(staticDir, "msctl")
		staticErr = testenv.BuildMsctl(staticBin)
	})
	if staticErr != nil {
		t.Fatal(staticErr)
	}
	return staticBin
}

// requireSplitLogStreams: the suite tells an instance's stdout from its
// stderr, which the pods/log API does only with the PodLogsQuerySplitStreams
// feature gate (alpha in v1.37) on the API server and the kubelet.
func requireSplitLogStreams(t *testing.T) {
	kubeconfig := testenv.RequireKubernetes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := clientset(t, kubeconfig).CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("read the API server's feature gates: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, `kubernetes_feature_enabled{name="PodLogsQuerySplitStreams"`) && strings.HasSuffix(line, " 1") {
			return
		}
	}
	testenv.KubernetesUnavailable(t, "the test cluster cannot split pod logs into stdout and stderr: "+
		"start kube-apiserver and kubelet with --feature-gates=PodLogsQuerySplitStreams=true (.ci/k8s)")
}

func TestConformance(t *testing.T) {
	requireSplitLogStreams(t)
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		return newRuntime(t, echoWorkspace(t))
	}, func(t *testing.T, rt runtime.Runtime, component string) {
		ns := rt.(*kubernetes.Runtime).Namespace()
		err := clientset(t, testenv.RequireKubernetes(t)).CoreV1().Pods(ns).Delete(context.Background(), component+"-0",
			metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		if err != nil {
			t.Fatalf("delete pod %s/%s-0: %v", ns, component, err)
		}
	})
}

func clientset(t *testing.T, kubeconfig string) k8s.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestUnloadableImageFailsFast: an infra image the node cannot get is
// reported with the image and the fix within seconds, before anything is
// applied, instead of a start that waits for a pull that never comes.
func TestUnloadableImageFailsFast(t *testing.T) {
	kubeconfig := testenv.RequireKubernetes(t)
	testenv.RequireDocker(t)
	m := echoWorkspace(t)
	m.Infra.Postgres.Version = "no-such-version"
	opts := options(t, m)
	opts.Kubeconfig, opts.ContainerdSock = kubeconfig, testenv.KubernetesContainerdSock(t)
	rt, err := kubernetes.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	_, err = rt.StartInfra(ctx, runtime.InfraSpec{})
	if err == nil || !strings.Contains(err.Error(), "postgres:no-such-version is not loadable") {
		t.Fatalf("StartInfra = %v, want the image named as not loadable", err)
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("took %s", d)
	}
	if _, err := clientset(t, kubeconfig).CoreV1().Namespaces().Get(ctx, rt.Namespace(), metav1.GetOptions{}); err == nil {
		t.Errorf("namespace %s created before the images were there", rt.Namespace())
	}
}
