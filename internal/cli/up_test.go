package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/agent/agenttest"
	"github.com/msctl/msctl/internal/manifest"
	rtpkg "github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// TestUpSystem drives a real msctl binary, built once for its subtests:
// up -d starts the agent by re-executing its own binary, which a test
// binary cannot stand in for.
func TestUpSystem(t *testing.T) {
	testenv.SkipShort(t, "builds msctl and brings workspaces up")
	bin := testenv.Msctl(t)
	t.Run("ForegroundCtrlCStopsGracefully", func(t *testing.T) { testForegroundCtrlC(t, bin) })
	for _, rt := range []string{"local", "docker"} {
		t.Run("UpWhileUpReconciles/"+rt, func(t *testing.T) {
			if rt == docker.Name {
				testenv.RequireDocker(t)
			}
			testUpWhileUp(t, bin, rt)
		})
	}
	t.Run("ShopLifecycle/docker", func(t *testing.T) {
		testenv.RequireDocker(t)
		testShopLifecycle(t, bin)
	})
	watchSystem(t, bin) // watch_test.go
}

// echoWorkspace writes a workspace of two copies of the runtime suite's echo
// service, a (with a database) and b (public, on a free gateway port), as a
// Go module of its own, and returns its directory.
func echoWorkspace(t *testing.T) string {
	t.Helper()
	dir, id := workspaceDir(t)
	src, err := os.ReadFile(filepath.Join(runtimetest.EchoDir(), "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.WriteFiles(t, dir, map[string]string{
		"services/a/main.go": string(src),
		"services/b/main.go": string(src),
		"go.mod":             "module example.com/ws\n\ngo 1.24\n",
		manifest.FileName: fmt.Sprintf("project: cli%s\ngateway:\n  port: %d\nservices:\n"+
			"  a:\n    path: services/a\n    language: go\n    database: true\n    replicas: 1\n"+
			"  b:\n    path: services/b\n    language: go\n    public: true\n    depends_on: [a]\n",
			id, testenv.FreePort(t)),
	})
	return dir
}

// downAtCleanup loads the workspace in dir and takes it down, with its
// data, when the test ends (on docker whatever down missed too).
func downAtCleanup(t *testing.T, bin, dir, rt string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Load(filepath.Join(dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		msctlIn(t, bin, dir, "down", "--volumes")
		if rt == docker.Name {
			testenv.RemoveDockerWorkspace(t, m.Project)
		}
	})
	return m
}

// workspaceDir is a directory for a workspace of the test's own and a
// random id for its project name.
func workspaceDir(t *testing.T) (dir, id string) {
	t.Helper()
	dir = t.TempDir()
	// Postgres runs as another user when the tests run as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return dir, hex.EncodeToString(b)
}

// msctlIn runs the msctl binary bin in dir and fails the test unless it
// exits 0.
func msctlIn(t *testing.T, bin, dir string, args ...string) testenv.Result {
	t.Helper()
	return testenv.CLI{Bin: bin, Dir: dir, Timeout: 4 * time.Minute}.Must(t, args...)
}

// components is `msctl ps --json` by name.
func components(t *testing.T, bin, dir string) map[string]state.Component {
	t.Helper()
	return testenv.CLI{Bin: bin, Dir: dir}.Components(t)
}

// identity is what changes when a component's first instance is replaced:
// its process or container, and its start time.
func identity(c state.Component) string {
	return fmt.Sprintf("pid %d container %s started %s", c.PID, c.Container, c.StartedAt.Format(time.RFC3339Nano))
}

// testForegroundCtrlC sends one SIGINT to a foreground up: it must stop
// everything the graceful way (Postgres finishes its fast shutdown rather
// than being killed) and exit 130.
func testForegroundCtrlC(t *testing.T, bin string) {
	dir := echoWorkspace(t)
	t.Cleanup(func() { msctlIn(t, bin, dir, "down", "--volumes") })
	cmd := exec.Command(bin, "up", "--runtime", "local")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	var errb bytes.Buffer
	ready := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		once := sync.Once{}
		for {
			n, err := stderr.Read(buf)
			errb.Write(buf[:n])
			if strings.Contains(errb.String(), "press Ctrl-C to stop") {
				once.Do(func() { close(ready) })
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-copied:
		t.Fatalf("up exited before it was up")
	case <-time.After(3 * time.Minute):
		t.Fatal("up not up within 3 minutes")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	<-copied
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("up after one SIGINT: %v, want exit 130", err)
	}
	if strings.Contains(errb.String(), "forcing stop") {
		t.Errorf("one SIGINT forced the stop:\n%s", errb.String())
	}
	infra, err := os.ReadFile(filepath.Join(dir, ".msctl", "infra.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(infra), "database system is shut down") {
		t.Errorf("Postgres did not finish a clean shutdown; infra.log ends:\n%s\nup said:\n%s", lastLines(string(infra), 15), errb.String())
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// testUpWhileUp runs up -d on a workspace that is already up on runtime
// rt: unchanged, it touches nothing; after one service's code changed, it
// replaces that service alone; replicas follow msctl.yaml both ways.
func testUpWhileUp(t *testing.T, bin, rt string) {
	dir := echoWorkspace(t)
	m := downAtCleanup(t, bin, dir, rt)
	msctlIn(t, bin, dir, "up", "-d", "--runtime", rt)
	first := components(t, bin, dir)

	r := msctlIn(t, bin, dir, "up", "-d")
	if !strings.Contains(r.Stderr, "already up; nothing changed") {
		t.Errorf("second up said:\n%s", r.Stderr)
	}
	assertReplaced(t, first, components(t, bin, dir), nil)

	main := filepath.Join(dir, "services", "b", "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WriteFiles(t, dir, map[string]string{"services/b/main.go": string(src) + "\nfunc init() { os.Setenv(\"ECHO_EDITED\", \"1\") }\n"})
	r = msctlIn(t, bin, dir, "up", "-d")
	if !strings.Contains(r.Stderr, "b: code changed, restarted") || strings.Contains(r.Stderr, "  a:") {
		t.Errorf("up after editing b said:\n%s", r.Stderr)
	}
	assertReplaced(t, first, components(t, bin, dir), []string{"b"})

	yaml := func(replicas int) {
		t.Helper()
		testenv.WriteFiles(t, dir, map[string]string{manifest.FileName: strings.Replace(mustRead(t, filepath.Join(dir, manifest.FileName)),
			fmt.Sprintf("replicas: %d", 3-replicas), fmt.Sprintf("replicas: %d", replicas), 1)})
	}
	yaml(2)
	if r := msctlIn(t, bin, dir, "up", "-d"); !strings.Contains(r.Stderr, "a: scaled 1 → 2") {
		t.Errorf("up with two replicas of a said:\n%s", r.Stderr)
	}
	assertInstances(t, bin, dir, rt, m.Project, 2)
	yaml(1)
	if r := msctlIn(t, bin, dir, "up", "-d"); !strings.Contains(r.Stderr, "a: scaled 2 → 1") {
		t.Errorf("up with one replica of a said:\n%s", r.Stderr)
	}
	assertInstances(t, bin, dir, rt, m.Project, 1)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertReplaced checks that the services in changed run in new instances
// and every other component in the same ones.
func assertReplaced(t *testing.T, before, after map[string]state.Component, changed []string) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		switch replaced, want := identity(a) != identity(b), slices.Contains(changed, name); {
		case !ok:
			t.Errorf("%s is gone", name)
		case replaced != want:
			t.Errorf("%s replaced = %t, want %t: %s → %s", name, replaced, want, identity(b), identity(a))
		}
	}
}

// assertInstances checks that service a runs n instances, and on docker
// that it has exactly n containers.
func assertInstances(t *testing.T, bin, dir, rt, project string, n int) {
	t.Helper()
	if got := components(t, bin, dir)["a"]; got.Instances != n || got.State != state.StateHealthy {
		t.Errorf("a: %d instances, %s; want %d healthy", got.Instances, got.State, n)
	}
	if rt != docker.Name {
		return
	}
	cli, err := docker.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", docker.LabelWorkspace+"="+project),
		filters.Arg("label", docker.LabelComponent+"=a"),
	)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != n {
		t.Errorf("a has %d containers, want %d", len(cs), n)
	}
}

// infraNames are the components every workspace runs besides its services.
var infraNames = []string{rtpkg.Postgres, rtpkg.Broker, rtpkg.Registry}

// shopWorkspace copies the repository's msctl.yaml into a directory of its
// own with a unique project, a free gateway port and the services' paths
// made absolute, so that it runs the real shop beside anyone else's.
func shopWorkspace(t *testing.T, bin string) (testenv.Shop, *manifest.Manifest) {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	project := "shop" + hex.EncodeToString(b)
	shop := testenv.NewShop(t, bin, project)
	m, err := manifest.Load(filepath.Join(shop.Dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if m.Project != project || m.Gateway.Port != shop.Port {
		t.Fatalf("copied manifest has project %q on port %d, want %q on %d", m.Project, m.Gateway.Port, project, shop.Port)
	}
	return shop, m
}

// testShopLifecycle takes the repository's shop through the life the
// Docker runtime promises, all through the msctl binary: up with traces
// from the containers reaching the agent; ps, logs and a clean second up
// after the agent was killed; down keeping the data, down --volumes
// removing it; down after a killed agent removing what it left.
func testShopLifecycle(t *testing.T, bin string) {
	ws, m := shopWorkspace(t, bin)
	dir := m.Dir()
	// Cleanups run last first: the agent dies before everything is removed,
	// so that it cannot restart what is being removed.
	t.Cleanup(func() { testenv.RemoveDockerWorkspace(t, m.Project) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent.log ends:\n%s", tailFile(filepath.Join(agent.StateDir(dir), "agent.log"), 30))
			_ = docker.Logs(context.Background(), m.Project, docker.LogsOptions{Tail: 20}, func(l state.LogLine) {
				t.Logf("%s: %s", l.Service, l.Text)
			})
		}
		killAgent(t, dir)
	})
	want := append(slices.Clone(infraNames), m.ServiceNames()...)
	shop := &shopClient{ws.Gateway(t)}
	shop.Client = &http.Client{Timeout: 15 * time.Second}
	up := func() map[string]state.Component {
		t.Helper()
		msctlIn(t, bin, dir, "up", "-d", "--runtime", docker.Name)
		comps := components(t, bin, dir)
		assertShopHealthy(t, comps, want)
		return comps
	}

	// 1. Up, all healthy.
	up()

	// 2. An order through the gateway leaves one trace across the services
	// in the agent: the containers reach its OTLP receiver.
	token := shop.login("shop@example.com")
	metricsBefore := agenttest.Metrics(t, dir)
	orderID := shop.place(token)
	if got := shop.settle(token, orderID); got != "CONFIRMED" {
		t.Fatalf("order %s is %s, want CONFIRMED", orderID, got)
	}
	assertTraceAcross(t, dir, "gateway: POST /api/v1/orders", "gateway", "orders", "inventory", "payments")
	agenttest.EventsCountedOnce(t, dir)
	agenttest.MetricsReflectLoad(t, dir, metricsBefore, agenttest.OrderLoads(1)...)
	// msctl dlq on docker: the agent reaches the broker through its
	// published port.
	agenttest.ParkAndDrop(t, dir)

	// 3. A killed agent leaves its containers running, healthy (the chaos
	// proxy they dial through is a container too): ps and logs answer from
	// Docker, and up adopts them rather than starting more.
	before := containersByComponent(t, m.Project)
	killAgent(t, dir)
	assertShopHealthy(t, components(t, bin, dir), want)
	assertLogs(t, bin, dir, want)
	assertLogs(t, bin, dir, []string{"gateway", "orders"}, "gateway", "orders")
	r := msctlIn(t, bin, dir, "up", "-d", "--runtime", docker.Name)
	assertShopHealthy(t, components(t, bin, dir), want)
	after := containersByComponent(t, m.Project)
	for name, n := range replicasOf(m) {
		if len(after[name]) != n {
			t.Errorf("after up following a killed agent, %s has containers %v, want %d", name, after[name], n)
		}
	}
	if !maps.EqualFunc(before, after, slices.Equal) {
		t.Errorf("up following a killed agent replaced containers: %v → %v\nup said:\n%s", before, after, r.Stderr)
	}
	shop.assertOrder(shop.login("shop@example.com"), orderID, "CONFIRMED")

	// 4. down keeps the data, down --volumes does not.
	r = msctlIn(t, bin, dir, "down")
	assertDownSaid(t, r, "stopped in ")
	assertNothingLeft(t, m.Project, true)
	up()
	shop.assertOrder(shop.login("shop@example.com"), orderID, "CONFIRMED")
	r = msctlIn(t, bin, dir, "down", "--volumes")
	assertDownSaid(t, r, "stopped in ", "removed the data")
	assertNothingLeft(t, m.Project, false)
	up()
	if code := shop.Do("GET", "/api/v1/orders/"+orderID, shop.login("shop@example.com"), nil, nil); code != http.StatusNotFound {
		t.Errorf("after down --volumes and up, GET the old order: %d, want 404", code)
	}

	// down without an agent removes what the killed one left.
	killAgent(t, dir)
	r = msctlIn(t, bin, dir, "down", "--volumes")
	// Every component's container, and the chaos proxy's.
	assertDownSaid(t, r, fmt.Sprintf("removed the %d containers it left", len(want)+1), "removed the data")
	assertNothingLeft(t, m.Project, false)
	if r := msctlIn(t, bin, dir, "down"); !strings.Contains(r.Stderr, "nothing is up") {
		t.Errorf("down with nothing up said:\n%s", r.Stderr)
	}
}

// killAgent ends the workspace's agent with SIGKILL, if one runs, and
// waits until its lock is released.
func killAgent(t *testing.T, dir string) {
	t.Helper()
	c, err := agent.Connect(dir)
	if errors.Is(err, agent.ErrNotRunning) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(c.Info().PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill agent %d: %v", c.Info().PID, err)
	}
	for i := 0; agent.Alive(agent.StateDir(dir)); i++ {
		if i == 100 {
			t.Fatalf("agent %d still holds its lock 10s after SIGKILL", c.Info().PID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertShopHealthy checks that ps lists exactly the wanted components,
// each healthy, services in one instance.
func assertShopHealthy(t *testing.T, comps map[string]state.Component, want []string) {
	t.Helper()
	if got := slices.Sorted(maps.Keys(comps)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("ps lists %v, want %v", got, slices.Sorted(slices.Values(want)))
	}
	for name, c := range comps {
		if c.State != state.StateHealthy || c.Kind == state.KindService && c.Instances != 1 {
			t.Errorf("%s %s: %s in %d instances (%s), want healthy", c.Kind, name, c.State, c.Instances, firstLine(c.Health))
		}
	}
}

// assertTraceAcross waits for a trace in the agent with spans of every one
// of services, its root span named root (the service and the matched route).
func assertTraceAcross(t *testing.T, dir, root string, services ...string) {
	t.Helper()
	c, err := agent.Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		snap, err := c.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		seen = seen[:0]
		for _, tr := range snap.Traces {
			seen = append(seen, fmt.Sprintf("%s %v", tr.Root, tr.Services))
			if tr.Root != root || !containsAll(tr.Services, services) {
				continue
			}
			spans, err := c.Trace(t.Context(), tr.TraceID)
			if err != nil {
				t.Fatal(err)
			}
			var of []string
			for _, sp := range spans {
				of = append(of, sp.Service)
			}
			if containsAll(of, services) {
				return
			}
		}
	}
	t.Errorf("no trace %q with spans of all of %v within 30s; traces:\n%s", root, services, strings.Join(seen, "\n"))
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// assertLogs runs msctl logs with args and checks that every line comes
// from one of allowed and that each of must has at least one.
func assertLogs(t *testing.T, bin, dir string, allowed []string, args ...string) {
	t.Helper()
	out := msctlIn(t, bin, dir, append([]string{"logs", "--json"}, args...)...).Stdout
	lines := map[string]int{}
	for l := range strings.Lines(out) {
		var line state.LogLine
		err := json.Unmarshal([]byte(l), &line)
		svc := line.Service
		if err != nil || !slices.Contains(allowed, svc) {
			t.Errorf("msctl logs %s: line %q is not from one of %v", strings.Join(args, " "), l, allowed)
			return
		}
		lines[svc]++
	}
	for _, s := range args {
		if lines[s] == 0 {
			t.Errorf("msctl logs %s: no line from %s (lines per service: %v)", strings.Join(args, " "), s, lines)
		}
	}
	if len(lines) == 0 {
		t.Errorf("msctl logs %s printed nothing", strings.Join(args, " "))
	}
}

// assertDownSaid checks down's report: what it must say, and never that
// nothing was up.
func assertDownSaid(t *testing.T, r testenv.Result, must ...string) {
	t.Helper()
	for _, s := range must {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("down said %q, want %q in it", r.Stderr, s)
		}
	}
	if strings.Contains(r.Stderr, "nothing is up") {
		t.Errorf("down stopped a workspace but said %q", r.Stderr)
	}
}

// replicasOf is the number of containers each component of m should have.
func replicasOf(m *manifest.Manifest) map[string]int {
	out := map[string]int{}
	for _, n := range infraNames {
		out[n] = 1
	}
	for _, n := range m.ServiceNames() {
		out[n] = max(m.Services[n].Replicas, 1)
	}
	return out
}

// containersByComponent lists the ids of the workspace's containers,
// running or not, per component label.
func containersByComponent(t *testing.T, project string) map[string][]string {
	t.Helper()
	cli, err := docker.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", docker.LabelWorkspace+"="+project))})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, c := range cs {
		name := c.Labels[docker.LabelComponent]
		out[name] = append(out[name], c.ID)
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

// assertNothingLeft checks that no container or network of the workspace
// remains, and that its volumes do exactly when volumes is set.
func assertNothingLeft(t *testing.T, project string, volumes bool) {
	t.Helper()
	if cs := containersByComponent(t, project); len(cs) > 0 {
		t.Errorf("containers left per component: %v", cs)
	}
	cli, err := docker.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	label := filters.NewArgs(filters.Arg("label", docker.LabelWorkspace+"="+project))
	ns, err := cli.NetworkList(context.Background(), network.ListOptions{Filters: label})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		t.Errorf("network %s left", n.Name)
	}
	vs, err := cli.VolumeList(context.Background(), volume.ListOptions{Filters: label})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vs.Volumes {
		names = append(names, v.Name)
	}
	if pg := "msctl-" + project + "-postgres-data"; volumes != slices.Contains(names, pg) || !volumes && len(names) > 0 {
		t.Errorf("volumes %v; want %s kept = %t", names, pg, volumes)
	}
}

// shopClient talks to the shop through its gateway, as a user would.
type shopClient struct{ *testenv.API }

// login signs up unless the user exists, and logs in.
func (c *shopClient) login(email string) string {
	c.T.Helper()
	return c.SignIn(email, "Shopper", http.StatusCreated, http.StatusConflict)
}

// place orders one keyboard with a good card and returns the order's id.
func (c *shopClient) place(token string) string {
	c.T.Helper()
	return c.PlaceOrder(token, testenv.Keyboard, testenv.GoodCard, 1, nil)
}

// settle waits until the order leaves PENDING and returns its status.
func (c *shopClient) settle(token, id string) string {
	c.T.Helper()
	return c.Settle(token, id, 30*time.Second).Status
}

func (c *shopClient) assertOrder(token, id, status string) {
	c.T.Helper()
	var o testenv.Order
	if code := c.Do("GET", "/api/v1/orders/"+id, token, nil, &o); code != http.StatusOK || o.Status != status {
		c.T.Errorf("order %s: %d %q, want %s", id, code, o.Status, status)
	}
}
