package kubernetes_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/kubernetes"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/testenv"
)

// TestBuildPushesToRegistry runs the kubernetes runtime as against a remote
// cluster: no node containerd, kubernetes.registry set to a real OCI
// registry (go-containerregistry's) on 127.0.0.1. Build pushes the echo
// image there, the node pulls it (containerd speaks plain HTTP to loopback
// registries), the pod runs that reference and serves, the collector image
// goes the same way, and a second Build by a new runtime finds the image
// in the registry and pushes nothing.
func TestBuildPushesToRegistry(t *testing.T) {
	kubeconfig := testenv.RequireKubernetes(t)
	testenv.RequireDocker(t)
	m := echoWorkspace(t)

	host, writes := kubernetes.TestRegistry(t)
	m.Kubernetes.Registry = host + "/team"

	// Nothing can be pulled from the infra images' public registries here:
	// put them on the node the local way first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	loader := options(t, m)
	loader.Kubeconfig, loader.ContainerdSock = kubeconfig, testenv.KubernetesContainerdSock(t)
	lrt, err := kubernetes.New(loader)
	if err != nil {
		t.Fatal(err)
	}
	if err := lrt.LoadInfraImages(ctx); err != nil {
		t.Fatal(err)
	}
	_ = lrt.Close()

	// The runtime under test has no containerd socket, as for a remote
	// cluster (the environment's would be used otherwise).
	sock := loader.ContainerdSock
	t.Setenv(kubernetes.EnvContainerdSock, "")
	opts := options(t, m)
	opts.Kubeconfig, opts.CollectorBinary = kubeconfig, staticMsctl(t)
	rt, err := kubernetes.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removePulled(t, sock, m.Kubernetes.Registry) })
	removeAtCleanup(t, rt) // cleanups run last first: the pods go before their images

	echo := runtime.BuildSpec{Name: "echo", Dir: runtimetest.EchoDir(), Language: "go"}
	build := func(rt *kubernetes.Runtime) runtime.BuildEvent {
		t.Helper()
		var done runtime.BuildEvent
		begin := time.Now()
		if err := rt.Build(ctx, []runtime.BuildSpec{echo}, func(ev runtime.BuildEvent) {
			if ev.Done {
				done = ev
			}
		}); err != nil {
			t.Fatalf("Build: %v", err)
		}
		t.Logf("Build took %s (cached %v, %d registry writes so far)", time.Since(begin).Round(time.Millisecond), done.Cached, writes.Load())
		return done
	}
	first := build(rt)
	if writes.Load() == 0 {
		t.Fatal("Build pushed nothing to the registry")
	}
	wantImage := m.Kubernetes.Registry + "/" + first.ID // ID is msctl/<project>-echo:<hash>
	if want := gen.ServiceImage(m.Kubernetes.Registry, m.Project, "echo", first.ID[strings.LastIndexByte(first.ID, ':')+1:]); wantImage != want {
		t.Fatalf("pushed %s, but the generator (export) names %s", wantImage, want)
	}

	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer sink.Close()
	if _, err := rt.StartInfra(ctx, runtime.InfraSpec{OTLPHostAddr: strings.TrimPrefix(sink.URL, "http://")}); err != nil {
		t.Fatalf("StartInfra: %v", err)
	}
	in, err := rt.Start(ctx, runtime.Spec{Service: "echo", Instance: "echo-1-reg",
		Env: map[string]string{"SERVICE_NAME": "echo", "INSTANCE_ID": "echo-1-reg"}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() { _ = in.Stop(context.Background(), time.Second) }()
	serves(t, in)

	cs := clientset(t, kubeconfig)
	pod, err := cs.CoreV1().Pods(rt.Namespace()).Get(ctx, "echo-1-reg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Spec.Containers[0].Image; got != wantImage {
		t.Errorf("pod runs %s, want %s", got, wantImage)
	}
	repo := wantImage[:strings.LastIndexByte(wantImage, ':')]
	if st := pod.Status.ContainerStatuses; len(st) == 0 || !strings.HasPrefix(st[0].ImageID, repo+"@sha256:") {
		t.Errorf("container statuses %+v: want the image pulled from the registry", st)
	}
	collectors, err := cs.CoreV1().Pods(rt.Namespace()).List(ctx, metav1.ListOptions{LabelSelector: gen.LabelName + "=" + gen.CollectorName})
	if err != nil || len(collectors.Items) == 0 {
		t.Fatalf("collector pods: %v, %v", collectors, err)
	}
	if got := collectors.Items[0].Spec.Containers[0].Image; !strings.HasPrefix(got, m.Kubernetes.Registry+"/msctl/collector:") {
		t.Errorf("collector runs %s, want an image of the registry", got)
	}

	// A new runtime (a later `up`) finds the image there: cached, no push.
	rt2, err := kubernetes.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	before := writes.Load()
	if again := build(rt2); !again.Cached || again.ID != first.ID {
		t.Errorf("second Build = %+v, want cached %s", again, first.ID)
	}
	if n := writes.Load() - before; n != 0 {
		t.Errorf("second Build wrote to the registry %d times, want none", n)
	}
}

// serves waits until the instance answers /readyz, then has it echo.
func serves(t *testing.T, in runtime.Instance) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + in.Info().Endpoint + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance at %s not ready: %v", in.Info().Endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + in.Info().Endpoint + "/env")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "echo-1-reg") {
		t.Errorf("GET /env = %s %q, want the instance's environment", resp.Status, b)
	}
}

// removePulled removes from the node what it pulled from this test's
// registry, whose port no later run reuses by intent.
func removePulled(t *testing.T, sock, registry string) {
	out, err := exec.Command("ctr", "--address", sock, "-n", "k8s.io", "images", "ls", "-q").Output()
	if err != nil {
		t.Logf("list the node's images: %v", err)
		return
	}
	var refs []string
	for _, ref := range strings.Fields(string(out)) {
		if strings.HasPrefix(ref, registry+"/") {
			refs = append(refs, ref)
		}
	}
	if len(refs) > 0 {
		if out, err := exec.Command("ctr", append([]string{"--address", sock, "-n", "k8s.io", "images", "rm"}, refs...)...).CombinedOutput(); err != nil {
			t.Logf("remove %v from the node: %v: %s", refs, err, out)
		}
	}
}
