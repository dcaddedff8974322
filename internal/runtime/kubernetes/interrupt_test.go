package kubernetes_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/testenv"
)

// interruptBound is how long a foreground up may take to stop after one
// Ctrl-C: deleting the workspace's objects and waiting out the pods' grace
// (the echo service stops at SIGTERM, Postgres's fast shutdown takes a
// second or two), on a loaded 2-core machine.
const interruptBound = 90 * time.Second

// TestForegroundCtrlC runs `msctl up --runtime kubernetes` in the
// foreground, waits until the public service answers on 127.0.0.1 through
// the agent's port-forward, and sends one SIGINT: msctl exits 130 within
// interruptBound, no pod and no object of the workspace but its Secrets and
// claims is left in the namespace, agent.json and every forwarded port are
// gone, and `down --volumes` then removes the namespace.
func TestForegroundCtrlC(t *testing.T) {
	_, cs := useCluster(t)
	cli, project, port := publicEchoWorkspace(t)
	ns := gen.DefaultNamespace(project)
	downAtCleanup(t, func() { cli.Run(t, "down", "--volumes") }, cs, ns)

	cmd := cli.Command("up", "--runtime", "kubernetes")
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	deadline := time.Now().Add(8 * time.Minute) // the first up builds and loads every image
	for !answers(url) {
		select {
		case err := <-exited:
			t.Fatalf("up exited (%v) before %s answered:\n%s", err, url, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 8 minutes:\n%s", url, out.String())
		}
	}
	info := agentInfo(t, cli.Dir)
	ports := forwardedPorts(t, cli, port)

	begin := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(interruptBound):
		t.Fatalf("up still running %s after one SIGINT:\n%s", interruptBound, out.String())
	}
	took := time.Since(begin)
	t.Logf("stopped %s after SIGINT", took.Round(100*time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("up after one SIGINT: %v, want exit 130\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "forcing stop") {
		t.Errorf("one SIGINT forced the stop:\n%s", out.String())
	}

	if _, err := os.Stat(filepath.Join(agent.StateDir(cli.Dir), "agent.json")); !os.IsNotExist(err) {
		t.Errorf("agent.json after the stop: %v, want it gone", err)
	}
	for _, addr := range append(ports, info.Addr) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the stop", addr)
		}
	}
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Errorf("gateway port %d not free after the stop: %v", port, err)
	} else {
		l.Close()
	}
	if left := leftovers(t, cs, ns, project); len(left) > 0 {
		t.Errorf("left in namespace %s after the stop (only Secrets and claims may stay): %s", ns, strings.Join(left, ", "))
	}

	downRemovesNamespace(t, cli, cs, ns)
}

// publicEchoWorkspace writes a workspace whose one service, the conformance
// suite's echo with a database, is public on a free gateway port.
func publicEchoWorkspace(t *testing.T) (cli testenv.CLI, project string, port int) {
	t.Helper()
	project = uniqueProject()
	port = testenv.FreePort(t)
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{manifest.FileName: fmt.Sprintf(
		"project: %s\ngateway:\n  port: %d\nservices:\n  echo:\n    path: %s\n    language: go\n    database: true\n    public: true\n",
		project, port, runtimetest.EchoDir())})
	return testenv.CLI{Bin: staticMsctl(t), Dir: dir, Timeout: 6 * time.Minute}, project, port
}

func answers(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// agentInfo reads agent.json of the foreground up's agent.
func agentInfo(t *testing.T, dir string) agent.Info {
	t.Helper()
	c, err := agent.Connect(dir)
	if err != nil {
		t.Fatalf("connect to the foreground up's agent: %v", err)
	}
	return c.Info()
}

var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// forwardedPorts are the 127.0.0.1 addresses `ps` shows for the running
// workspace other than the gateway's: the agent's port-forwards to infra and
// services.
func forwardedPorts(t *testing.T, cli testenv.CLI, gateway int) []string {
	t.Helper()
	var addrs []string
	for _, c := range cli.PS(t) {
		if m := loopbackPort.FindStringSubmatch(c.Endpoint); m != nil && m[1] != strconv.Itoa(gateway) {
			addrs = append(addrs, m[0])
		}
	}
	return addrs
}

// downRemovesNamespace runs `down --volumes` and waits until the
// workspace's namespace is gone.
func downRemovesNamespace(t *testing.T, c testenv.CLI, cs k8s.Interface, ns string) {
	t.Helper()
	c.Must(t, "down", "--volumes")
	testenv.Eventually(t, 3*time.Minute, "namespace "+ns+" gone", func() error {
		_, err := cs.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("namespace still there (err %v)", err)
	})
}

// leftovers names what of the workspace is still in ns apart from the
// Secrets and PersistentVolumeClaims that down without --volumes keeps.
func leftovers(t *testing.T, cs k8s.Interface, ns, project string) []string {
	t.Helper()
	ctx := t.Context()
	sel := metav1.ListOptions{LabelSelector: labels.Set{gen.LabelPartOf: gen.PartOf(project)}.String()}
	lists := []struct {
		kind string
		list func() (k8sruntime.Object, error)
	}{
		// Every pod counts, labelled or not: the namespace is the workspace's.
		{"pod", func() (k8sruntime.Object, error) { return cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}) }},
		{"deployment", func() (k8sruntime.Object, error) { return cs.AppsV1().Deployments(ns).List(ctx, sel) }},
		{"statefulset", func() (k8sruntime.Object, error) { return cs.AppsV1().StatefulSets(ns).List(ctx, sel) }},
		{"service", func() (k8sruntime.Object, error) { return cs.CoreV1().Services(ns).List(ctx, sel) }},
		{"job", func() (k8sruntime.Object, error) { return cs.BatchV1().Jobs(ns).List(ctx, sel) }},
		{"configmap", func() (k8sruntime.Object, error) { return cs.CoreV1().ConfigMaps(ns).List(ctx, sel) }},
		{"networkpolicy", func() (k8sruntime.Object, error) { return cs.NetworkingV1().NetworkPolicies(ns).List(ctx, sel) }},
	}
	var left []string
	for _, l := range lists {
		obj, err := l.list()
		if err != nil {
			t.Errorf("list %ss in %s: %v", l.kind, ns, err)
			continue
		}
		items, err := apimeta.ExtractList(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			acc, err := apimeta.Accessor(it)
			if err != nil {
				t.Fatal(err)
			}
			left = append(left, l.kind+"/"+acc.GetName())
		}
	}
	return left
}
