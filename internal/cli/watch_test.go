package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/runtime/kubernetes"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// watchSystem is TestUpSystem's `up --watch` part. Watch/<runtime>
// drives `msctl up -d --watch` on a small workspace of its own: edits of
// a handler, a syntax error, a shared package and msctl.yaml, each
// applied to exactly the services they affect while the others keep
// their processes or containers. WatchUnderLoad/<runtime> replaces
// replicas of the shop while clients call them.
func watchSystem(t *testing.T, bin string) {
	for _, rt := range []string{"local", "docker", "kubernetes"} {
		t.Run("WatchUnderLoad/"+rt, func(t *testing.T) {
			requireRuntime(t, rt)
			testWatchUnderLoad(t, bin, rt)
		})
	}
	for _, rt := range []string{"local", "docker", "kubernetes"} {
		t.Run("Watch/"+rt, func(t *testing.T) {
			requireRuntime(t, rt)
			testWatch(t, bin, rt)
		})
	}
}

// requireRuntime skips (fails under CI) unless rt can run here, and
// points msctl at the test cluster for kubernetes.
func requireRuntime(t *testing.T, rt string) {
	t.Helper()
	switch rt {
	case docker.Name:
		testenv.RequireDocker(t)
	case kubernetes.Name:
		testenv.RequireDocker(t)
		t.Setenv("KUBECONFIG", testenv.RequireKubernetes(t))
		t.Setenv(kubernetes.EnvContainerdSock, testenv.KubernetesContainerdSock(t))
	}
}

// The watch workspace: a (imports the shared package services/kit/greet)
// and b (public, imports nothing shared; its handler lives in handler.go).
const (
	watchMain = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	mux.HandleFunc("/hello", hello)
	if err := http.ListenAndServe(os.Getenv("HTTP_ADDR"), mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`
	watchHandlerA = `package main

import (
	"fmt"
	"net/http"

	"example.com/ws/services/kit/greet"
)

func hello(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, greet.Word()) }
`
	watchHandlerB = `package main

import (
	"fmt"
	"net/http"
)

func hello(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, %q) }
`
	watchGreet = "package greet\n\nfunc Word() string { return %q }\n"
)

func watchWorkspace(t *testing.T) string {
	t.Helper()
	dir, id := workspaceDir(t)
	testenv.WriteFiles(t, dir, map[string]string{
		"go.mod":                      "module example.com/ws\n\ngo 1.24\n",
		".gitignore":                  "*.gen\n",
		"services/kit/greet/greet.go": fmt.Sprintf(watchGreet, "hello"),
		"services/a/main.go":          watchMain,
		"services/a/handler.go":       watchHandlerA,
		"services/b/main.go":          watchMain,
		"services/b/handler.go":       fmt.Sprintf(watchHandlerB, "v1"),
		manifest.FileName: fmt.Sprintf("project: watch%s\ngateway:\n  port: %d\nservices:\n"+
			"  a:\n    path: services/a\n    language: go\n    replicas: 1\n"+
			"  b:\n    path: services/b\n    language: go\n    public: true\n    depends_on: [a]\n",
			id, testenv.FreePort(t)),
	})
	return dir
}

func testWatch(t *testing.T, bin, rt string) {
	dir := watchWorkspace(t)
	m := downAtCleanup(t, bin, dir, rt)
	cli := testenv.CLI{Bin: bin, Dir: dir}
	// The foreground mode on local, the detached one elsewhere: both
	// follow the same agent's watcher.
	foreground := rt == "local"
	args := []string{"up", "-d", "--watch", "--runtime", rt}
	if foreground {
		args = []string{"up", "--watch", "--runtime", rt}
	}
	watcher := startWatch(t, cli, args...)
	c, err := agent.Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	gw := fmt.Sprintf("http://127.0.0.1:%d/hello", m.Gateway.Port)
	serves := func(url, want string) {
		t.Helper()
		testenv.Eventually(t, 3*time.Minute, url+" answers "+want, func() error {
			if got := get(url); got != want {
				return fmt.Errorf("answers %q (watch output:\n%s)", got, watcher.Output())
			}
			return nil
		})
	}
	write := func(rel, text string) {
		t.Helper()
		testenv.WriteFiles(t, dir, map[string]string{rel: text})
	}
	serves(gw, "v1")
	before := components(t, bin, dir)

	// An edit of b's handler: the new behaviour is served, a keeps its
	// process or container.
	write("services/b/handler.go", fmt.Sprintf(watchHandlerB, "v2"))
	serves(gw, "v2")
	testenv.Until(t, time.Minute, "the progress line of b", func() bool {
		return strings.Contains(watcher.Output(), "b: change detected → building → replaced 1/1")
	})
	after := components(t, bin, dir)
	assertReplaced(t, before, after, []string{"b"})

	// Ignored files change nothing.
	write("services/b/x.gen", "generated")
	write("services/b/.handler.go.swp", "swap")

	// A syntax error: the old instance keeps serving and the compiler's
	// message is shown, in the CLI and the agent's status, until a good
	// build.
	write("services/b/handler.go", "package main\n\nfunc hello( {\n")
	testenv.Eventually(t, 2*time.Minute, "the build error in the watch status", func() error {
		s, err := c.Watch(context.Background())
		if err != nil {
			return err
		}
		if !strings.Contains(s.BuildError, "handler.go:3") {
			return fmt.Errorf("build error %q", s.BuildError)
		}
		return nil
	})
	// The CLI prints what it reads from the same status, a poll later.
	testenv.Until(t, 10*time.Second, "up --watch to show the compiler error", func() bool {
		out := watcher.Output()
		return strings.Contains(out, "b: change detected → building → failed") && strings.Contains(out, "handler.go:3:13: syntax error")
	})
	if got := get(gw); got != "v2" {
		t.Errorf("after a broken build the gateway answers %q, want the old v2", got)
	}
	assertReplaced(t, after, components(t, bin, dir), nil)
	write("services/b/handler.go", fmt.Sprintf(watchHandlerB, "v3"))
	serves(gw, "v3")
	testenv.Eventually(t, time.Minute, "the build error to clear", func() error {
		if s, err := c.Watch(context.Background()); err != nil || s.BuildError != "" {
			return fmt.Errorf("status %+v, %v", s, err)
		}
		return nil
	})

	// A shared package: its importer a is rebuilt and replaced, b not.
	before = components(t, bin, dir)
	write("services/kit/greet/greet.go", fmt.Sprintf(watchGreet, "bonjour"))
	testenv.Until(t, 3*time.Minute, "the progress line of a", func() bool {
		return strings.Contains(watcher.Output(), "a: change detected → building → replaced 1/1")
	})
	after = components(t, bin, dir)
	assertReplaced(t, before, after, []string{"a"})
	serves("http://"+after["a"].Endpoint+"/hello", "bonjour")

	// msctl.yaml: a replica change reconciles; a structural one says
	// what needs down and up, and watching goes on.
	write(manifest.FileName, strings.Replace(mustRead(t, filepath.Join(dir, manifest.FileName)), "replicas: 1", "replicas: 2", 1))
	testenv.Until(t, 3*time.Minute, "a scaled to 2", func() bool {
		return strings.Contains(watcher.Output(), "a: scaled 1 → 2")
	})
	assertInstances(t, bin, dir, rt, m.Project, 2)
	write(manifest.FileName, strings.Replace(mustRead(t, filepath.Join(dir, manifest.FileName)), "depends_on: [a]", "depends_on: []", 1))
	testenv.Until(t, time.Minute, "restart needed", func() bool {
		return strings.Contains(watcher.Output(), "msctl down, then msctl up (still watching)")
	})

	if foreground {
		// Ctrl-C stops watching and, as for any foreground up, the
		// workspace.
		_ = syscall.Kill(watcher.PGID(), syscall.SIGINT)
		select {
		case <-watcher.Done():
		case <-time.After(2 * time.Minute):
			t.Fatalf("a foreground up --watch did not stop on Ctrl-C:\n%s", watcher.Output())
		}
		if out := watcher.Output(); !strings.Contains(out, "stopped in") {
			t.Errorf("Ctrl-C: up --watch said:\n%s", out)
		}
		if agent.Alive(agent.StateDir(dir)) {
			t.Error("the agent of a foreground up --watch outlived its Ctrl-C")
		}
		return
	}
	// With -d, Ctrl-C stops watching; the workspace stays up.
	watcher.Stop(syscall.SIGINT)
	if out := watcher.Output(); !strings.Contains(out, "stopped watching; the workspace is still up") {
		t.Errorf("Ctrl-C: up --watch said:\n%s", out)
	}
	if s, err := c.Watch(context.Background()); err != nil || s.On {
		t.Errorf("after Ctrl-C the agent's watch status is %+v, %v", s, err)
	}
	if got := get(gw); got != "v3" {
		t.Errorf("after Ctrl-C the gateway answers %q", got)
	}
}

// get is the body of a GET, or the error.
func get(url string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// testWatchUnderLoad runs the shop with two replicas of inventory and
// orders under `up -d --watch` and changes their env in msctl.yaml, twice,
// while clients keep calling them through the gateway, reads (retried by
// the gateway) and order placements (never retried): the one-at-a-time
// replacement must fail none of them.
func testWatchUnderLoad(t *testing.T, bin, rt string) {
	sh := testenv.NewShop(t, bin, "watchload")
	downAtCleanup(t, bin, sh.Dir, rt)
	path := filepath.Join(sh.Dir, manifest.FileName)
	setServices(t, path, func(name string, svc map[string]any) {
		if name == "inventory" || name == "orders" {
			svc["replicas"] = 2
		}
	})
	watcher := startWatch(t, sh.CLI, "up", "-d", "--watch", "--runtime", rt)
	gw := sh.Gateway(t)
	token := gw.SignIn("watch-load@example.com", "Load")
	product := gw.InStock(1)
	before := components(t, bin, sh.Dir)

	calls := []loadCall{
		{"GET", "/api/v1/products", "", ""},
		{"GET", "/api/v1/products", "", ""},
		{"GET", "/api/v1/orders", token, ""},
		{"POST", "/api/v1/orders", token, fmt.Sprintf(`{"items":[{"product_id":%q,"quantity":1}],"card_number":%q}`, product.ID, testenv.GoodCard)},
	}
	load := startLoad(gw.Base, calls, 3*time.Minute, 4000)
	time.Sleep(time.Second) // load before the change, too
	for gen := 2; gen <= 3; gen++ {
		setServices(t, path, func(name string, svc map[string]any) {
			if name == "inventory" || name == "orders" {
				svc["env"] = map[string]any{"WATCH_GENERATION": strconv.Itoa(gen)}
			}
		})
		testenv.Until(t, 4*time.Minute, "inventory and orders replaced", func() bool {
			out := watcher.Output()
			return strings.Count(out, "inventory: env changed → replaced 2/2; orders: env changed → replaced 2/2") == gen-1 ||
				strings.Contains(out, "failed")
		})
	}
	time.Sleep(time.Second) // and after it
	res := load.stop()
	t.Logf("%d requests through the gateway while inventory and orders were replaced, %d failed", res.total, len(res.failures))
	if len(res.failures) > 0 {
		t.Errorf("%d of %d requests failed during the replacement, e.g.:\n%s", len(res.failures), res.total, strings.Join(res.failures[:min(10, len(res.failures))], "\n"))
	}
	if res.total < 100 {
		t.Errorf("only %d requests: the load did not run", res.total)
	}
	after := components(t, bin, sh.Dir)
	assertReplaced(t, before, after, []string{"inventory", "orders"})
	for _, n := range []string{"inventory", "orders"} {
		if after[n].Instances != 2 {
			t.Errorf("%s: %d instances after the replacement, want 2", n, after[n].Instances)
		}
	}
}

// startWatch starts msctl with args (an up --watch) and returns once it
// says what it watches.
func startWatch(t *testing.T, cli testenv.CLI, args ...string) *testenv.Proc {
	t.Helper()
	p := testenv.StartProc(t, "msctl "+strings.Join(args, " "), cli.Command(args...), syscall.SIGINT)
	testenv.Until(t, 6*time.Minute, "up --watch to watch", func() bool {
		return strings.Contains(p.Output(), " and msctl.yaml\n") || p.Exited()
	})
	if p.Exited() {
		t.Fatalf("msctl %s exited:\n%s", strings.Join(args, " "), p.Output())
	}
	return p
}

// setServices rewrites each service's entry of the msctl.yaml at path
// with edit.
func setServices(t *testing.T, path string, edit func(name string, svc map[string]any)) {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(mustRead(t, path)), &doc); err != nil {
		t.Fatal(err)
	}
	svcs, _ := doc["services"].(map[string]any)
	for name, v := range svcs {
		if svc, ok := v.(map[string]any); ok {
			edit(name, svc)
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WriteFiles(t, filepath.Dir(path), map[string]string{filepath.Base(path): string(out)})
}

// loadCall is one kind of request a load worker repeats.
type loadCall struct{ method, path, token, body string }

type loadResult struct {
	total    int
	failures []string
}

type runningLoad struct {
	done    chan struct{}
	results chan loadResult
}

// startLoad runs one worker per call, each repeating it until stop,
// within at most d and n requests, counting every answer that is not 2xx
// and every request without an answer as a failure.
func startLoad(base string, calls []loadCall, d time.Duration, n int) *runningLoad {
	l := &runningLoad{done: make(chan struct{}), results: make(chan loadResult, len(calls))}
	deadline := time.Now().Add(d)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, c := range calls {
		go func() {
			var r loadResult
			defer func() { l.results <- r }()
			for i := 0; i < n && time.Now().Before(deadline); i++ {
				select {
				case <-l.done:
					return
				default:
				}
				req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
				if err != nil {
					r.failures = append(r.failures, err.Error())
					return
				}
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				if c.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				r.total++
				resp, err := client.Do(req)
				if err != nil {
					r.failures = append(r.failures, fmt.Sprintf("%s %s: %v", c.method, c.path, err))
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					r.failures = append(r.failures, fmt.Sprintf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	return l
}

// stop ends the load and sums up the workers' results.
func (l *runningLoad) stop() loadResult {
	close(l.done)
	var sum loadResult
	for range cap(l.results) {
		r := <-l.results
		sum.total += r.total
		sum.failures = append(sum.failures, r.failures...)
	}
	return sum
}

// TestFollowWatch: each event is printed once, in order, from after the
// seq it starts at; the follow ends when the agent stops answering.
func TestFollowWatch(t *testing.T) {
	var reads int
	get := func(context.Context) (state.WatchStatus, error) {
		reads++
		switch reads {
		case 1:
			return state.WatchStatus{Events: []state.WatchEvent{{Seq: 3, Text: "old"}, {Seq: 4, Text: "a: change detected → building"}}}, nil
		case 2, 3:
			return state.WatchStatus{Events: []state.WatchEvent{{Seq: 4, Text: "a: change detected → building"}, {Seq: 5, Text: "a: change detected → building → replaced 1/1 (1s)"}}}, nil
		}
		return state.WatchStatus{}, errors.New("connection refused")
	}
	var out strings.Builder
	done := make(chan struct{})
	go func() { followWatch(t.Context(), get, 3, &out); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("followWatch did not end when the agent stopped answering")
	}
	if want := "a: change detected → building\na: change detected → building → replaced 1/1 (1s)\n"; out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
}
