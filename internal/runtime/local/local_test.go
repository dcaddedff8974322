package local_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/local"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/services/kit/registry"
)

// stateDir is a fresh .msctl for one test. As root, Postgres runs as
// another user, who must be able to reach the data directory: t.TempDir
// makes 0700 directories, so this one is opened up.
func stateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "msctl-local-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, ".msctl")
}

func newRuntime(t *testing.T, dir string) *local.Runtime {
	t.Helper()
	rt, err := local.New(local.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// startEcho builds the echo service and starts its instance echo-1.
func startEcho(t *testing.T, rt *local.Runtime) runtime.Instance {
	t.Helper()
	if err := rt.Build(t.Context(), []runtime.BuildSpec{{Name: "echo", Dir: runtimetest.EchoDir(), Language: "go"}}, nil); err != nil {
		t.Fatal(err)
	}
	in, err := rt.Start(t.Context(), runtime.Spec{Service: "echo", Instance: "echo-1"})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestConformance(t *testing.T) {
	dirs := map[runtime.Runtime]string{}
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		dir := stateDir(t)
		rt := newRuntime(t, dir)
		dirs[rt] = dir
		return rt
	}, func(t *testing.T, rt runtime.Runtime, component string) {
		// NATS and etcd run inside the agent: they cannot fail apart from it.
		if component == runtime.Postgres {
			killPostgres(t, dirs[rt])
		}
	})
}

// killPostgres kills the workspace's postmaster with SIGKILL, as a crash
// would, found among the processes the runtime recorded.
func killPostgres(t *testing.T, dir string) {
	t.Helper()
	procs, err := local.Orphans(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Name == "postgres" {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitGone(t, p.PID)
			return
		}
	}
	t.Fatalf("no postgres among %+v", procs)
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ')' {
			return len(s) > i+2 && s[i+2] != 'Z'
		}
	}
	return true
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 200 && alive(pid); i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("process %d still runs", pid)
	}
}

// TestStopKillsTheProcessGroup checks that what a service spawned goes
// with it.
func TestStopKillsTheProcessGroup(t *testing.T) {
	rt := newRuntime(t, stateDir(t))
	ctx := t.Context()
	in := startEcho(t, rt)
	child := spawn(t, in)
	if err := in.Stop(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	waitGone(t, in.Info().PID)
	waitGone(t, child)
}

func spawn(t *testing.T, in runtime.Instance) int {
	t.Helper()
	var body []byte
	for i := 0; i < 200; i++ {
		resp, err := http.Get("http://" + in.Info().Endpoint + "/spawn")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	pid, err := strconv.Atoi(string(body))
	if err != nil {
		t.Fatalf("spawn: %q", body)
	}
	return pid
}

// TestCleanupReapsLeftovers plays an agent killed with SIGKILL: its
// runtime never stops the instance; a new runtime on the same state
// directory finds it in pids.json and stops it with everything it spawned,
// but leaves alone a process whose pid was recorded with another start time
// (a recycled pid is not ours).
func TestCleanupReapsLeftovers(t *testing.T) {
	dir := stateDir(t)
	ctx := t.Context()
	old := newRuntime(t, dir)
	if err := old.Build(ctx, []runtime.BuildSpec{{Name: "echo", Dir: runtimetest.EchoDir(), Language: "go"}}, nil); err != nil {
		t.Fatal(err)
	}
	in, err := old.Start(ctx, runtime.Spec{Service: "echo", Instance: "echo-1"})
	if err != nil {
		t.Fatal(err)
	}
	child := spawn(t, in)

	stranger := exec.Command("sleep", "30")
	stranger.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stranger.Process.Kill(); _ = stranger.Wait() })
	var procs []map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "pids.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &procs); err != nil {
		t.Fatal(err)
	}
	procs = append(procs, map[string]any{"pid": stranger.Process.Pid, "pgid": stranger.Process.Pid, "what": "echo-2", "start": 1})
	data, _ = json.Marshal(procs)
	if err := os.WriteFile(filepath.Join(dir, "pids.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := newRuntime(t, dir).Cleanup(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	waitGone(t, in.Info().PID)
	waitGone(t, child)
	if !alive(stranger.Process.Pid) {
		t.Error("cleanup killed a process that was not ours")
	}
}

func TestTakenPortNamesHolder(t *testing.T) {
	rt := newRuntime(t, stateDir(t))
	ctx := t.Context()
	holder := startEcho(t, rt)
	defer holder.Stop(context.Background(), time.Second)
	_, portStr, _ := splitPort(holder.Info().Endpoint)
	port, _ := strconv.Atoi(portStr)
	for i := 0; i < 200; i++ { // until it listens
		if resp, err := http.Get("http://" + holder.Info().Endpoint + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	_, err := rt.Start(ctx, runtime.Spec{Service: "echo", Instance: "echo-2", HostPort: port})
	pe, ok := err.(*runtime.PortInUseError)
	if !ok {
		t.Fatalf("err = %v, want PortInUseError", err)
	}
	if want := "pid " + strconv.Itoa(holder.Info().PID) + " (echo)"; pe.Holder != want {
		t.Errorf("holder = %q, want %q", pe.Holder, want)
	}
}

func splitPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], nil
		}
	}
	return addr, "", nil
}

// TestPostgresDataOutsideUnreachableWorkspace plays a checkout under a
// directory only root may enter, like /root: Postgres, run as the postgres
// user, cannot reach .msctl there, so the cluster lives under
// /var/lib/msctl behind a link, is found again by the next run, and goes
// with the data on Cleanup(volumes).
func TestPostgresDataOutsideUnreachableWorkspace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only a root-run Postgres runs as another user")
	}
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(private, "ws", ".msctl")
	ctx := t.Context()

	rt := newRuntime(t, dir)
	t.Cleanup(func() {
		_ = rt.StopInfra(context.Background(), 10*time.Second)
		_ = rt.Cleanup(context.Background(), true)
	})
	if _, err := rt.StartInfra(ctx, runtime.InfraSpec{}); err != nil {
		t.Fatalf("StartInfra in a workspace under a 0700 directory: %v", err)
	}
	link := filepath.Join(dir, "postgres")
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatalf(".msctl/postgres is not a link: %v", err)
	}
	if !strings.HasPrefix(target, "/var/lib/msctl/") {
		t.Errorf(".msctl/postgres -> %s, want a directory under /var/lib/msctl", target)
	}
	dsn, err := rt.EnsureDatabase(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	sql := func(stmt string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	sql("CREATE TABLE kept (id int)")
	if err := rt.StopInfra(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	again := newRuntime(t, dir)
	if _, err := again.StartInfra(ctx, runtime.InfraSpec{}); err != nil {
		t.Fatal(err)
	}
	if dsn, err = again.EnsureDatabase(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	sql("INSERT INTO kept VALUES (1)") // the table survived: same cluster
	if err := again.StopInfra(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := again.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, filepath.Dir(target)} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s after Cleanup(volumes): %v", p, err)
		}
	}
}

// TestStaleRegistrationsClearedOnStart: etcd keeps an earlier run's
// registrations in its data, and its restart renews their leases; the next
// StartInfra must drop them, or the gateway routes to reaped processes.
func TestStaleRegistrationsClearedOnStart(t *testing.T) {
	dir := stateDir(t)
	ctx := t.Context()
	rt := newRuntime(t, dir)
	t.Cleanup(func() {
		_ = rt.StopInfra(context.Background(), 10*time.Second)
		_ = rt.Cleanup(context.Background(), true)
	})
	inf, err := rt.StartInfra(ctx, runtime.InfraSpec{})
	if err != nil {
		t.Fatal(err)
	}
	etcdPut(t, inf.Host.Etcd, registry.Key("users", "users-dead"), `{"addr":"127.0.0.1:1"}`)
	if err := rt.StopInfra(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	again := newRuntime(t, dir)
	t.Cleanup(func() { _ = again.StopInfra(context.Background(), 10*time.Second) })
	inf, err = again.StartInfra(ctx, runtime.InfraSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if n := etcdCount(t, inf.Host.Etcd, registry.Prefix); n != 0 {
		t.Fatalf("%d registrations left from the previous run, want none", n)
	}
}

func etcdClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func etcdPut(t *testing.T, endpoints []string, key, value string) {
	t.Helper()
	cli := etcdClient(t, endpoints)
	lease, err := cli.Grant(t.Context(), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), key, value, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
}

func etcdCount(t *testing.T, endpoints []string, prefix string) int64 {
	t.Helper()
	resp, err := etcdClient(t, endpoints).Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}
