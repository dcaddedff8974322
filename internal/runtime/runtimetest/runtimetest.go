// Package runtimetest is the conformance suite every runtime.Runtime must
// pass. It runs the tiny echo service in testdata/echo rather than the whole
// system, so it is quick, and it talks to the infra the runtime starts with
// real clients.
package runtimetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/testenv"
)

// EchoDir returns the absolute directory of the echo test service.
func EchoDir() string {
	return filepath.Join(testenv.RepoRoot(), "internal", "runtime", "runtimetest", "testdata", "echo")
}

// EchoWorkspace writes a workspace of project with the echo service alone
// into a temporary directory and loads its manifest, for runtimes whose
// tests start from msctl.yaml.
func EchoWorkspace(t testing.TB, project string) *manifest.Manifest {
	t.Helper()
	return testenv.Manifest(t, t.TempDir(), "project: "+project+"\nservices:\n  echo:\n    path: "+EchoDir()+"\n    language: go\n")
}

// Crash makes one infra component of rt fail the way it fails on that
// runtime (a killed process or container, a deleted pod), or does nothing
// for a component that cannot fail on its own (the local runtime's
// embedded broker and registry): RestartInfra must bring it back either way.
type Crash func(t *testing.T, rt runtime.Runtime, component string)

// Run runs the suite against runtimes made by newRuntime. Each call must
// return a runtime with its own, empty state; the suite stops what it starts.
func Run(t *testing.T, newRuntime func(t *testing.T) runtime.Runtime, crash Crash) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		_ = rt.StopInfra(context.Background(), 10*time.Second)
		_ = rt.Cleanup(context.Background(), true)
	})

	inf, err := rt.StartInfra(ctx, runtime.InfraSpec{OTLPHostAddr: "127.0.0.1:4318"})
	if err != nil {
		t.Fatalf("StartInfra: %v", err)
	}

	t.Run("InfraAnswers", func(t *testing.T) { infraAnswers(t, ctx, inf) })
	t.Run("StartInfraTwiceReturnsSameEndpoints", func(t *testing.T) {
		again, err := rt.StartInfra(ctx, runtime.InfraSpec{OTLPHostAddr: "127.0.0.1:4318"})
		if err != nil {
			t.Fatal(err)
		}
		if again.Host.Postgres != inf.Host.Postgres || again.Host.NATSURL != inf.Host.NATSURL {
			t.Errorf("second StartInfra = %+v, want %+v", again.Host, inf.Host)
		}
	})
	t.Run("OTLPEndpointForServices", func(t *testing.T) {
		if inf.Services.OTLP == "" || !strings.HasSuffix(inf.Services.OTLP, ":4318") {
			t.Errorf("services' OTLP endpoint = %q, want one on port 4318", inf.Services.OTLP)
		}
	})
	t.Run("EnsureDatabase", func(t *testing.T) { ensureDatabase(t, ctx, rt, inf) })

	t.Run("StartUnbuilt", func(t *testing.T) {
		_, err := rt.Start(ctx, runtime.Spec{Service: "never-built", Instance: "never-built-1"})
		if !errors.Is(err, runtime.ErrNotBuilt) {
			t.Errorf("Start of an unbuilt service: err = %v, want ErrNotBuilt", err)
		}
	})

	echo := runtime.BuildSpec{Name: "echo", Dir: EchoDir(), Language: "go"}
	var evMu sync.Mutex
	var events []runtime.BuildEvent
	if err := rt.Build(ctx, []runtime.BuildSpec{echo}, func(ev runtime.BuildEvent) {
		evMu.Lock()
		events = append(events, ev)
		evMu.Unlock()
	}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Run("BuildReportsProgress", func(t *testing.T) {
		evMu.Lock()
		defer evMu.Unlock()
		if n := len(events); n == 0 || !events[n-1].Done || events[n-1].Service != "echo" || events[n-1].Err != nil {
			t.Errorf("build events = %+v, want a successful Done for echo last", events)
		}
	})
	t.Run("RebuildIsCached", func(t *testing.T) {
		var last runtime.BuildEvent
		if err := rt.Build(ctx, []runtime.BuildSpec{echo}, func(ev runtime.BuildEvent) { last = ev }); err != nil {
			t.Fatal(err)
		}
		if !last.Done || !last.Cached {
			t.Errorf("second build of unchanged sources: %+v, want Cached", last)
		}
	})
	t.Run("BuildFailureNamesTheService", func(t *testing.T) {
		bad := runtime.BuildSpec{Name: "missing", Dir: filepath.Join(EchoDir(), "no-such-dir"), Language: "go"}
		if err := rt.Build(ctx, []runtime.BuildSpec{bad}, nil); err == nil {
			t.Error("build of a missing directory succeeded")
		}
	})

	t.Run("StartServesAndPassesEnv", func(t *testing.T) { startServes(t, ctx, rt) })
	t.Run("ExitIsReported", func(t *testing.T) { exitReported(t, ctx, rt) })
	t.Run("StopGraceful", func(t *testing.T) { stopGraceful(t, ctx, rt) })
	t.Run("StopKillsAfterGrace", func(t *testing.T) { stopKills(t, ctx, rt) })
	t.Run("FixedHostPort", func(t *testing.T) { fixedPort(t, ctx, rt) })
	t.Run("FixedHostPortTaken", func(t *testing.T) { portTaken(t, ctx, rt) })
	t.Run("RestartInfraKeepsData", func(t *testing.T) { restartInfra(t, rt, inf, crash) })
	t.Run("CleanupVolumesRemovesData", func(t *testing.T) { cleanupVolumes(t, ctx, rt) })
}

func infraAnswers(t *testing.T, ctx context.Context, inf runtime.Infra) {
	if c, err := net.DialTimeout("tcp", inf.Host.Postgres, 2*time.Second); err != nil {
		t.Errorf("postgres at %s: %v", inf.Host.Postgres, err)
	} else {
		c.Close()
	}
	nc, err := nats.Connect(inf.Host.NATSURL, nats.Timeout(2*time.Second))
	if err != nil {
		t.Errorf("nats at %s: %v", inf.Host.NATSURL, err)
	} else {
		js, err := nc.JetStream()
		if err == nil {
			_, err = js.AccountInfo()
		}
		if err != nil {
			t.Errorf("jetstream: %v", err)
		}
		nc.Close()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: inf.Host.Etcd, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("etcd at %v: %v", inf.Host.Etcd, err)
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Put(pctx, "/msctl/conformance", "ok"); err != nil {
		t.Errorf("etcd put: %v", err)
	}
}

func ensureDatabase(t *testing.T, ctx context.Context, rt runtime.Runtime, inf runtime.Infra) {
	dsnA, err := rt.EnsureDatabase(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	again, err := rt.EnsureDatabase(ctx, "alpha")
	if err != nil || again != dsnA {
		t.Errorf("second EnsureDatabase = %q, %v; want %q", again, err, dsnA)
	}
	dsnB, err := rt.EnsureDatabase(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, hostDSN(t, dsnA, inf))
	if err != nil {
		t.Fatalf("connect as alpha: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS marker (id int)"); err != nil {
		t.Errorf("alpha cannot create a table in its database: %v", err)
	}
	// alpha's credentials must not open beta's database.
	cfg, err := pgx.ParseConfig(hostDSN(t, dsnA, inf))
	if err != nil {
		t.Fatal(err)
	}
	bcfg, err := pgx.ParseConfig(hostDSN(t, dsnB, inf))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = bcfg.Database
	if c, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		c.Close(ctx)
		t.Error("alpha's role connected to beta's database")
	}
}

// hostDSN rewrites a service DSN to the host-side Postgres endpoint, for
// runtimes whose services reach Postgres by another name.
func hostDSN(t *testing.T, dsn string, inf runtime.Infra) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse DSN %q: %v", dsn, err)
	}
	host, port, _ := net.SplitHostPort(inf.Host.Postgres)
	return fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable", cfg.User, cfg.Password, host, port, cfg.Database)
}

// output collects an instance's lines.
type output struct {
	mu    sync.Mutex
	lines []string
}

func (o *output) add(stream, line string) {
	o.mu.Lock()
	o.lines = append(o.lines, stream+": "+line)
	o.mu.Unlock()
}

func (o *output) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		for _, l := range o.lines {
			if strings.Contains(l, want) {
				o.mu.Unlock()
				return
			}
		}
		o.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	t.Errorf("no output line %q in %q", want, o.lines)
}

func start(t *testing.T, ctx context.Context, rt runtime.Runtime, id string, env map[string]string, port int) (runtime.Instance, *output) {
	t.Helper()
	out := &output{}
	in, err := rt.Start(ctx, runtime.Spec{Service: "echo", Instance: id, HostPort: port, Env: env, Output: out.add})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = in.Stop(context.Background(), time.Second) })
	waitReady(t, in)
	return in, out
}

func waitReady(t *testing.T, in runtime.Instance) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-in.Done():
			t.Fatalf("instance exited before ready: %v", in.Exit())
		default:
		}
		if resp, err := http.Get("http://" + in.Info().Endpoint + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("instance at %s not ready", in.Info().Endpoint)
}

func get(t *testing.T, in runtime.Instance, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + in.Info().Endpoint + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func startServes(t *testing.T, ctx context.Context, rt runtime.Runtime) {
	in, out := start(t, ctx, rt, "echo-1-env", map[string]string{"SERVICE_NAME": "echo", "INSTANCE_ID": "echo-1-env", "GREETING": "hi"}, 0)
	info := in.Info()
	if info.ID != "echo-1-env" || info.StartedAt.IsZero() || info.PID == 0 && info.Container == "" {
		t.Errorf("Info = %+v, want id, start time and a pid or container", info)
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(get(t, in, "/env")), &env); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"SERVICE_NAME": "echo", "INSTANCE_ID": "echo-1-env", "GREETING": "hi"} {
		if env[k] != want {
			t.Errorf("env %s = %q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"HTTP_ADDR", "ADVERTISE_ADDR"} {
		if env[k] == "" {
			t.Errorf("env %s is not set", k)
		}
	}
	out.waitFor(t, "stdout: echo listening on")
	out.waitFor(t, "stderr: echo ready")
	get(t, in, "/say?msg=hello-conformance")
	out.waitFor(t, "stdout: hello-conformance")
}

func waitDone(t *testing.T, in runtime.Instance, within time.Duration) {
	t.Helper()
	select {
	case <-in.Done():
	case <-time.After(within):
		t.Fatalf("instance still running after %s", within)
	}
}

func exitReported(t *testing.T, ctx context.Context, rt runtime.Runtime) {
	in, _ := start(t, ctx, rt, "echo-1-exit", nil, 0)
	get(t, in, "/exit?code=3")
	waitDone(t, in, 10*time.Second)
	if ex := in.Exit(); ex.Code != 3 {
		t.Errorf("Exit = %+v, want code 3", ex)
	}
}

func stopGraceful(t *testing.T, ctx context.Context, rt runtime.Runtime) {
	in, out := start(t, ctx, rt, "echo-1-stop", nil, 0)
	if err := in.Stop(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitDone(t, in, time.Second)
	out.waitFor(t, "echo stopped")
	if ex := in.Exit(); ex.Code != 0 {
		t.Errorf("graceful stop: Exit = %+v, want code 0", ex)
	}
	if c, err := net.DialTimeout("tcp", in.Info().Endpoint, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", in.Info().Endpoint)
	}
	if err := in.Stop(ctx, time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func stopKills(t *testing.T, ctx context.Context, rt runtime.Runtime) {
	in, out := start(t, ctx, rt, "echo-1-kill", map[string]string{"ECHO_IGNORE_TERM": "1"}, 0)
	begin := time.Now()
	if err := in.Stop(ctx, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitDone(t, in, time.Second)
	out.waitFor(t, "ignoring")
	if time.Since(begin) < 300*time.Millisecond {
		t.Errorf("stopped before the grace period ended")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fixedPort(t *testing.T, ctx context.Context, rt runtime.Runtime) {
	port := freePort(t)
	in, _ := start(t, ctx, rt, "echo-1-fixed", nil, port)
	if _, p, _ := net.SplitHostPort(in.Info().Endpoint); p != fmt.Sprint(port) {
		t.Errorf("endpoint %s, want port %d", in.Info().Endpoint, port)
	}
}

func portTaken(t *testing.T, ctx context.Context, rt runtime.Runtime) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	in, err := rt.Start(ctx, runtime.Spec{Service: "echo", Instance: "echo-1-taken", HostPort: port})
	if err == nil {
		_ = in.Stop(ctx, time.Second)
		t.Fatal("Start on a taken port succeeded")
	}
	var pe *runtime.PortInUseError
	if !errors.As(err, &pe) || pe.Port != port {
		t.Fatalf("err = %v, want PortInUseError for %d", err, port)
	}
}

func cleanupVolumes(t *testing.T, ctx context.Context, rt runtime.Runtime) {
	if err := rt.StopInfra(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	inf, err := rt.StartInfra(ctx, runtime.InfraSpec{})
	if err != nil {
		t.Fatal(err)
	}
	dsn, err := rt.EnsureDatabase(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, hostDSN(t, dsn, inf))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'marker'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("data survived Cleanup with volumes")
	}
}
