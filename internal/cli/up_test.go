package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// TestUpSystem drives a real msctl binary, built once for its subtests:
// up -d starts the agent by re-executing its own binary, which a test
// binary cannot stand in for.
func TestUpSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds msctl and brings workspaces up")
	}
	bin := filepath.Join(t.TempDir(), "msctl")
	_, file, _, _ := goruntime.Caller(0)
	build := exec.Command("go", "build", "-o", bin, "./cmd/msctl")
	build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build msctl: %v\n%s", err, out)
	}
	t.Run("ForegroundCtrlCStopsGracefully", func(t *testing.T) { testForegroundCtrlC(t, bin) })
	for _, rt := range []string{"local", "docker"} {
		t.Run("UpWhileUpReconciles/"+rt, func(t *testing.T) {
			if rt == docker.Name {
				testenv.RequireDocker(t)
			}
			testUpWhileUp(t, bin, rt)
		})
	}
}

// echoWorkspace writes a workspace of two copies of the runtime suite's echo
// service, a (with a database) and b (public, on a free gateway port), as a
// Go module of its own, and returns its directory.
func echoWorkspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// Postgres runs as another user when the tests run as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(runtimetest.EchoDir(), "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"a", "b"} {
		writeFile(t, filepath.Join(dir, "services", svc, "main.go"), string(src))
	}
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/ws\n\ngo 1.24\n")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	writeFile(t, filepath.Join(dir, manifest.FileName), fmt.Sprintf("project: cli%s\ngateway:\n  port: %d\nservices:\n"+
		"  a:\n    path: services/a\n    language: go\n    database: true\n    replicas: 1\n"+
		"  b:\n    path: services/b\n    language: go\n    public: true\n    depends_on: [a]\n",
		hex.EncodeToString(b), freeTCPPort(t)))
	return dir
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type result struct {
	stdout, stderr string
	code           int
}

// msctlIn runs the msctl binary bin in dir and fails the test unless it
// exits 0.
func msctlIn(t *testing.T, bin, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("msctl %s: %v", strings.Join(args, " "), err)
	}
	if r.code != 0 {
		t.Fatalf("msctl %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// components is `msctl ps --json` by name.
func components(t *testing.T, bin, dir string) map[string]state.Component {
	t.Helper()
	var cs []state.Component
	if err := json.Unmarshal([]byte(msctlIn(t, bin, dir, "ps", "--json").stdout), &cs); err != nil {
		t.Fatal(err)
	}
	out := map[string]state.Component{}
	for _, c := range cs {
		out[c.Name] = c
	}
	return out
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
	m, err := manifest.Load(filepath.Join(dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		msctlIn(t, bin, dir, "down", "--volumes")
		if rt == docker.Name {
			removeImages(t, m.Project)
		}
	})
	msctlIn(t, bin, dir, "up", "-d", "--runtime", rt)
	first := components(t, bin, dir)

	r := msctlIn(t, bin, dir, "up", "-d")
	if !strings.Contains(r.stderr, "already up; nothing changed") {
		t.Errorf("second up said:\n%s", r.stderr)
	}
	assertReplaced(t, first, components(t, bin, dir), nil)

	main := filepath.Join(dir, "services", "b", "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, main, string(src)+"\nfunc init() { os.Setenv(\"ECHO_EDITED\", \"1\") }\n")
	r = msctlIn(t, bin, dir, "up", "-d")
	if !strings.Contains(r.stderr, "b: code changed, restarted") || strings.Contains(r.stderr, "  a:") {
		t.Errorf("up after editing b said:\n%s", r.stderr)
	}
	assertReplaced(t, first, components(t, bin, dir), []string{"b"})

	yaml := func(replicas int) {
		t.Helper()
		writeFile(t, filepath.Join(dir, manifest.FileName), strings.Replace(mustRead(t, filepath.Join(dir, manifest.FileName)),
			fmt.Sprintf("replicas: %d", 3-replicas), fmt.Sprintf("replicas: %d", replicas), 1))
	}
	yaml(2)
	if r := msctlIn(t, bin, dir, "up", "-d"); !strings.Contains(r.stderr, "a: scaled 1 → 2") {
		t.Errorf("up with two replicas of a said:\n%s", r.stderr)
	}
	assertInstances(t, bin, dir, rt, m.Project, 2)
	yaml(1)
	if r := msctlIn(t, bin, dir, "up", "-d"); !strings.Contains(r.stderr, "a: scaled 2 → 1") {
		t.Errorf("up with one replica of a said:\n%s", r.stderr)
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
		if !ok {
			t.Errorf("%s is gone", name)
			continue
		}
		replaced := identity(a) != identity(b)
		want := false
		for _, c := range changed {
			want = want || c == name
		}
		if replaced != want {
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

// removeImages removes the service images a docker workspace built.
func removeImages(t *testing.T, project string) {
	t.Helper()
	rt, err := docker.New(docker.Options{Manifest: &manifest.Manifest{Project: project}})
	if err != nil {
		t.Error(err)
		return
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Cleanup(ctx, true); err != nil {
		t.Error(err)
	}
	if err := rt.RemoveImages(ctx); err != nil {
		t.Error(err)
	}
}
