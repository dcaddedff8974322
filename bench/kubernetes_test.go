package bench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/testenv"
)

// exportTag is the tag `msctl export k8s` gives the service images on the
// kubectl side; the benchmark tags the images msctl built with it on the
// node, so both sides run the very same images.
const exportTag = "bench"

// BenchmarkKubernetesUp compares a warm `msctl up -d --runtime kubernetes`
// of the whole shop until everything is ready with what a user would do
// without msctl: `kubectl apply -k` of the base `msctl export k8s` writes,
// then `kubectl rollout status` of every Deployment and StatefulSet (all at
// once, so the kubectl side waits only for the slowest). Both sides are
// warm the same way: images on the node, and the previous run removed with
// its data kept (msctl down; for kubectl, every object but the namespace,
// Secrets and claims). The kubectl side runs in a namespace of its own.
// It reports both times and msctl/kubectl as a ratio.
func BenchmarkKubernetesUp(b *testing.B) {
	testenv.SkipShort(b, "brings the shop up on the test cluster, several times")
	kubeconfig := testenv.RequireKubernetes(b)
	testenv.RequireDocker(b) // msctl builds the service images with the local engine
	env := testenv.KubernetesEnv()
	kubectlBin, ctrBin := env["MSCTL_K8S_KUBECTL"], env["MSCTL_K8S_CTR"]
	if kubectlBin == "" || ctrBin == "" {
		testenv.KubernetesUnavailable(b, "the test cluster's env (%s) names no MSCTL_K8S_KUBECTL or MSCTL_K8S_CTR", testenv.KubernetesEnvFile)
	}
	sock := testenv.KubernetesContainerdSock(b)
	b.Setenv("KUBECONFIG", kubeconfig)
	b.Setenv("MSCTL_K8S_CONTAINERD_SOCK", sock)
	// Static, as released: the running msctl is also the in-cluster
	// collector's image.
	bin := testenv.Msctl(b)
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	project := "kb" + hex.EncodeToString(rnd)
	shop := testenv.NewShop(b, bin, project)
	shop.Timeout = 10 * time.Minute
	kc := kubectlCLI{b: b, bin: kubectlBin, ns: gen.DefaultNamespace(project) + "-kubectl"}
	b.Cleanup(func() {
		shop.Run(b, "down", "--volumes")
		kc.run("delete", "namespace", kc.ns, "--ignore-not-found", "--wait=true", "--timeout=3m")
		for _, ns := range []string{gen.DefaultNamespace(project), kc.ns} {
			if r := kc.run("get", "namespace", ns, "--ignore-not-found", "-o", "name"); strings.TrimSpace(r.Stdout) != "" {
				b.Errorf("namespace %s left after the benchmark", ns)
			}
		}
	})

	// Cold, not measured: builds the images and loads them into the node,
	// initialises the volumes.
	shop.Must(b, "up", "-d", "--runtime", "kubernetes")
	images := kc.serviceImages(gen.DefaultNamespace(project), project)
	shop.Must(b, "down")
	msctlUp := func() time.Duration {
		start := time.Now()
		shop.Must(b, "up", "-d", "--runtime", "kubernetes")
		took := time.Since(start)
		shop.Must(b, "down")
		return took
	}

	base := exportBase(b, bin, project, kc.ns)
	for _, img := range images {
		repo, _, _ := strings.Cut(img, ":")
		testenv.Exec(b, time.Minute, "", ctrBin, "--address", sock, "-n", "k8s.io", "images", "tag", "--force",
			"docker.io/"+img, "docker.io/"+repo+":"+exportTag).Must(b)
	}
	// The first apply, not measured, creates the namespace and initialises
	// the volumes, and tells which workloads the base has.
	kc.must("apply", "-k", base)
	workloads := strings.Fields(kc.must("get", "deployments,statefulsets", "-n", kc.ns, "-o", "name"))
	if len(workloads) == 0 {
		b.Fatalf("kubectl apply -k %s made no Deployment or StatefulSet in %s", base, kc.ns)
	}
	kc.rollout(workloads)
	kc.removeKeepingData(project)
	kubectlUp := func() time.Duration {
		start := time.Now()
		kc.must("apply", "-k", base)
		each := kc.rollout(workloads)
		took := time.Since(start)
		b.Logf("kubectl rollouts after apply: %s", each)
		kc.removeKeepingData(project)
		return took
	}

	msctlTotal, kubectlTotal := testenv.TimeBoth(b, msctlUp, kubectlUp)
	// Logged as well: a failure in the cleanup hides the result line.
	b.Logf("warm up to all-ready: msctl %s, kubectl apply -k + rollout status %s (%d run(s) each)",
		msctlTotal/time.Duration(b.N), kubectlTotal/time.Duration(b.N), b.N)
	b.ReportMetric(msctlTotal.Seconds()/float64(b.N), "msctl-s/op")
	b.ReportMetric(kubectlTotal.Seconds()/float64(b.N), "kubectl-s/op")
	b.ReportMetric(msctlTotal.Seconds()/kubectlTotal.Seconds(), "msctl/kubectl")
}

// exportBase writes the shop's kustomize base with `msctl export k8s` from
// a copy of the workspace whose kubernetes.namespace is ns, so the kubectl
// side never touches msctl's namespace.
func exportBase(b *testing.B, bin, project, ns string) string {
	b.Helper()
	cp := testenv.NewShop(b, bin, project)
	path := filepath.Join(cp.Dir, "msctl.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		b.Fatal(err)
	}
	k, _ := doc["kubernetes"].(map[string]any)
	if k == nil {
		k = map[string]any{}
	}
	k["namespace"] = ns
	doc["kubernetes"] = k
	out, err := yaml.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		b.Fatal(err)
	}
	base := filepath.Join(b.TempDir(), "base")
	cp.Must(b, "export", "k8s", "--out", base, "--tag", exportTag)
	return base
}

// kubectlCLI runs the test cluster's kubectl (its kubeconfig comes from
// KUBECONFIG) on behalf of one namespace.
type kubectlCLI struct {
	b       *testing.B
	bin, ns string
}

func (k kubectlCLI) run(args ...string) testenv.Result {
	k.b.Helper()
	return testenv.Exec(k.b, 10*time.Minute, "", k.bin, args...)
}

func (k kubectlCLI) must(args ...string) string {
	k.b.Helper()
	return k.run(args...).Must(k.b).Stdout
}

// serviceImages are the images msctl runs the project's services on in
// ns, msctl/<project>-<service>:<content hash>.
func (k kubectlCLI) serviceImages(ns, project string) []string {
	k.b.Helper()
	out := k.must("get", "pods", "-n", ns, "-l", gen.LabelComponent+"="+gen.ComponentService,
		"-o", "jsonpath={.items[*].spec.containers[*].image}")
	var images []string
	for _, img := range strings.Fields(out) {
		if strings.HasPrefix(img, "msctl/"+project+"-") && !slices.Contains(images, img) {
			images = append(images, img)
		}
	}
	if len(images) == 0 {
		k.b.Fatalf("no service image of %s among the pods of %s: %q", project, ns, out)
	}
	return images
}

// rollout runs `kubectl rollout status` of every workload at once, fails
// the benchmark if one does not finish, and says how long each took.
func (k kubectlCLI) rollout(workloads []string) string {
	k.b.Helper()
	results := make([]testenv.Result, len(workloads))
	took := make([]string, len(workloads))
	var wg sync.WaitGroup
	for i, w := range workloads {
		wg.Go(func() {
			start := time.Now()
			results[i] = k.run("rollout", "status", "-n", k.ns, "--timeout=5m", w)
			took[i] = fmt.Sprintf("%s %s", w, time.Since(start).Round(100*time.Millisecond))
		})
	}
	wg.Wait()
	for _, r := range results {
		r.Must(k.b)
	}
	return strings.Join(took, ", ")
}

// removeKeepingData deletes what the base made in the namespace except the
// namespace, Secrets and the StatefulSets' claims, as msctl down does, and
// waits until no pod is left.
func (k kubectlCLI) removeKeepingData(project string) {
	k.b.Helper()
	k.must("delete", "-n", k.ns, "-l", gen.LabelPartOf+"="+gen.PartOf(project), "--wait=true",
		"deployments,statefulsets,services,jobs,configmaps,networkpolicies,poddisruptionbudgets,horizontalpodautoscalers")
	deadline := time.Now().Add(3 * time.Minute)
	for strings.TrimSpace(k.must("get", "pods", "-n", k.ns, "-o", "name")) != "" {
		if time.Now().After(deadline) {
			k.b.Fatalf("pods of %s still there 3 minutes after their workloads were deleted", k.ns)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
