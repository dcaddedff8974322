package docker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/jackc/pgx/v5"

	msctlagent "github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/secrets"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// agentEnv makes the test binary act as an agent: it brings the workspace
// of the manifest it names up on the docker runtime, says "ready", and then
// runs until it is killed, or stops everything on SIGINT as a foreground
// `msctl up` does on Ctrl-C. The tests kill it with SIGKILL to leave the
// containers behind the way a dead agent does.
const agentEnv = "MSCTL_DOCKER_TEST_AGENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(agentEnv); path != "" {
		os.Exit(runAgent(path))
	}
	os.Exit(m.Run())
}

func runAgent(path string) int {
	man, err := manifest.Load(path)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt, err := docker.New(docker.Options{Project: man.Project, Dir: man.Dir(), Log: log})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	// The workspace secret, as msctl's agent reads it: the shop's orders
	// and payments need their card-vault secret.
	secret, err := secrets.LoadOrCreate(msctlagent.StateDir(man.Dir()))
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	o, err := orchestrator.New(orchestrator.Options{Manifest: man, Runtime: rt, Log: log, Grace: 5 * time.Second, Secret: secret})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if err := o.Up(ctx, orchestrator.UpOptions{}); err != nil {
		fmt.Println("error:", err)
		_ = o.Down(context.Background(), orchestrator.DownOptions{})
		return 1
	}
	fmt.Println("ready")
	<-ctx.Done()
	if err := o.Down(context.Background(), orchestrator.DownOptions{}); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 130
}

// agent runs the test binary as an agent for the manifest at path and
// returns once the workspace is up.
func agent(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), agentEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.CreateTemp(t.TempDir(), "agent-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(4 * time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if l == "ready" {
				return cmd
			}
			if !ok || strings.HasPrefix(l, "error:") {
				log, _ := os.ReadFile(logf.Name())
				t.Fatalf("agent failed: %s\n%s", l, tail(string(log), 30))
			}
		case <-timeout:
			t.Fatal("agent not ready within 4 minutes")
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// kill ends an agent the hard way: its containers stay behind.
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// twoServiceWorkspace writes a workspace with two copies of the echo
// service, beta public on a free gateway port, as its own Go module.
func twoServiceWorkspace(t testing.TB, project string) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(runtimetest.EchoDir(), "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"alpha", "beta"} {
		d := filepath.Join(dir, "services", svc)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "main.go"), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dir, "go.mod"), "module example.com/ws\n\ngo 1.24\n")
	writeManifest(t, dir, project, true)
	return filepath.Join(dir, manifest.FileName)
}

func writeManifest(t testing.TB, dir, project string, withBeta bool) {
	t.Helper()
	yaml := fmt.Sprintf("project: %s\ngateway:\n  port: %d\nservices:\n  alpha:\n    path: services/alpha\n    language: go\n    database: true\n",
		project, testenv.FreePort(t))
	if withBeta {
		yaml += "  beta:\n    path: services/beta\n    language: go\n    public: true\n    depends_on: [alpha]\n"
	}
	write(t, filepath.Join(dir, manifest.FileName), yaml)
}

func write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ps is the workspace as Docker shows it, by component.
func ps(t *testing.T, project string) map[string]state.Component {
	t.Helper()
	cs, err := docker.ListContainers(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]state.Component{}
	for _, c := range cs {
		out[c.Name] = c
	}
	return out
}

// TestUpAdoptsUnchanged walks one workspace through the lifecycle the
// Docker runtime promises: a second up after the agent was killed recreates
// nothing and duplicates nothing, a changed service is recreated alone, a
// removed one goes, down keeps the data, Ctrl-C leaves nothing behind.
func TestUpAdoptsUnchanged(t *testing.T) {
	testenv.RequireDocker(t)
	project := uniqueProject(t)
	path := twoServiceWorkspace(t, project)
	dir := filepath.Dir(path)
	t.Cleanup(func() { testenv.RemoveDockerWorkspace(t, project) })

	kill(t, agent(t, path))
	first := ps(t, project)
	for _, name := range []string{runtime.Postgres, runtime.Broker, runtime.Registry, "alpha", "beta"} {
		c, ok := first[name]
		if !ok || c.Instances != 1 || c.State != state.StateHealthy {
			t.Fatalf("after up, %s = %+v, want one healthy instance (all: %+v)", name, c, first)
		}
	}
	assertLoopbackOnly(t, project)

	t.Run("LogsWithoutAgent", func(t *testing.T) {
		var got []string
		err := docker.Logs(context.Background(), project, docker.LogsOptions{Services: []string{"alpha"}}, func(l state.LogLine) {
			got = append(got, l.Stream+": "+l.Text)
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "stdout: echo listening on") }) {
			t.Errorf("logs of alpha = %q, want its listening line", got)
		}
	})

	t.Run("BrokerSyncsEveryWrite", func(t *testing.T) {
		js := brokerJetStream(t, project)
		// nats-server keeps its streams in a jetstream directory of store_dir.
		if !js.Config.SyncAlways || js.Config.StoreDir != "/data/jetstream" {
			t.Errorf("broker JetStream config = %+v, want sync_always on the /data volume", js.Config)
		}
	})

	// Data the ups after down must find again.
	query(t, hostDSN(t, path, "alpha"), "CREATE TABLE kept AS SELECT 'before' AS v")

	t.Run("SecondUpRecreatesNothing", func(t *testing.T) {
		kill(t, agent(t, path))
		assertSame(t, first, ps(t, project), nil)
	})

	t.Run("ChangedServiceRecreatedAlone", func(t *testing.T) {
		main := filepath.Join(dir, "services", "beta", "main.go")
		src, _ := os.ReadFile(main)
		write(t, main, string(src)+"\nfunc init() { os.Setenv(\"ECHO_EDITED\", \"1\") }\n")
		kill(t, agent(t, path))
		assertSame(t, first, ps(t, project), []string{"beta"})
	})

	t.Run("RemovedServiceRemoved", func(t *testing.T) {
		writeManifest(t, dir, project, false)
		kill(t, agent(t, path))
		now := ps(t, project)
		if _, ok := now["beta"]; ok {
			t.Errorf("beta still has a container after it left msctl.yaml: %+v", now["beta"])
		}
		if now["alpha"].Container != first["alpha"].Container {
			t.Errorf("alpha was recreated: %s → %s", first["alpha"].Container, now["alpha"].Container)
		}
	})

	t.Run("FewerReplicasRemovesExtras", func(t *testing.T) {
		one, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		write(t, path, strings.Replace(string(one), "    database: true\n", "    database: true\n    replicas: 2\n", 1))
		kill(t, agent(t, path))
		if n := ps(t, project)["alpha"].Instances; n != 2 {
			t.Fatalf("alpha has %d instances with two replicas", n)
		}
		write(t, path, string(one))
		kill(t, agent(t, path))
		if n := ps(t, project)["alpha"].Instances; n != 1 {
			t.Errorf("alpha has %d instances after going back to one replica", n)
		}
	})

	t.Run("CtrlCLeavesNothing", func(t *testing.T) {
		cmd := agent(t, path)
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 130 {
			t.Errorf("agent after SIGINT: %v, want exit 130", err)
		}
		if left := leftovers(t, project); len(left) > 0 {
			t.Errorf("after Ctrl-C: %v still there", left)
		}
		if v := volumesOf(t, project); len(v) != 3 {
			t.Errorf("volumes after down = %v, want the three infra volumes", v)
		}
	})

	t.Run("DataSurvivesDown", func(t *testing.T) {
		kill(t, agent(t, path))
		if v := query(t, hostDSN(t, path, "alpha"), "SELECT v FROM kept"); v != "before" {
			t.Errorf("row written before down reads %q", v)
		}
	})
}

// brokerJetStream reads the JetStream part of the broker's /varz through
// its published monitoring port.
func brokerJetStream(t *testing.T, project string) (js struct {
	Config struct {
		StoreDir   string `json:"store_dir"`
		SyncAlways bool   `json:"sync_always"`
	} `json:"config"`
}) {
	t.Helper()
	cli := engine(t)
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", docker.LabelWorkspace+"="+project),
		filters.Arg("label", docker.LabelComponent+"="+runtime.Broker),
	)})
	if err != nil || len(cs) != 1 {
		t.Fatalf("broker containers: %d, %v", len(cs), err)
	}
	var port uint16
	for _, p := range cs[0].Ports {
		if p.PrivatePort == 8222 && p.IP == "127.0.0.1" {
			port = p.PublicPort
		}
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var varz struct {
		JetStream json.RawMessage `json:"jetstream"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&varz); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(varz.JetStream, &js); err != nil {
		t.Fatalf("jetstream %s: %v", varz.JetStream, err)
	}
	return js
}

// hostDSN adopts the running infra of the workspace from a fresh Runtime
// and returns the DSN of a service's database through the published port.
func hostDSN(t *testing.T, path, service string) string {
	t.Helper()
	m, err := manifest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := docker.New(docker.Options{Project: m.Project, Dir: m.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := context.Background()
	inf, err := rt.StartInfra(ctx, runtime.InfraSpec{
		PostgresImage: m.Infra.Postgres.Ref(), BrokerImage: m.Infra.Broker.Ref(), RegistryImage: m.Infra.Registry.Ref(),
	})
	if err != nil {
		t.Fatal(err)
	}
	dsn, err := rt.EnsureDatabase(ctx, service)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(dsn, "@"+inf.Services.Postgres+"/", "@"+inf.Host.Postgres+"/", 1)
}

func query(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var out string
	for rows.Next() {
		if err := rows.Scan(&out); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// assertLoopbackOnly fails for any port of the workspace's containers that
// is published on another address than 127.0.0.1.
func assertLoopbackOnly(t *testing.T, project string) {
	t.Helper()
	cli := engine(t)
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelWorkspace+"="+project))})
	if err != nil {
		t.Fatal(err)
	}
	published := 0
	for _, c := range cs {
		info, err := cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for port, bs := range info.HostConfig.PortBindings {
			for _, b := range bs {
				if b.HostIP != "127.0.0.1" {
					t.Errorf("%s: %s bound on %q", info.Name, port, b.HostIP)
				}
			}
		}
		for port, bs := range info.NetworkSettings.Ports {
			for _, b := range bs {
				published++
				if b.HostIP != "127.0.0.1" {
					t.Errorf("%s: %s published on %s:%s", info.Name, port, b.HostIP, b.HostPort)
				}
			}
		}
	}
	if published == 0 {
		t.Error("no published ports found at all")
	}
}

// assertSame checks that every component of before still runs in the same
// container started at the same time, except those in changed, which must
// run in a new one; and that each has exactly one instance.
func assertSame(t *testing.T, before, after map[string]state.Component, changed []string) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		if !ok {
			t.Errorf("%s is gone", name)
			continue
		}
		if a.Instances != 1 {
			t.Errorf("%s has %d instances, want 1", name, a.Instances)
		}
		same := a.Container == b.Container && a.StartedAt.Equal(b.StartedAt)
		switch {
		case slices.Contains(changed, name) && same:
			t.Errorf("%s was not recreated after its code changed", name)
		case !slices.Contains(changed, name) && !same:
			t.Errorf("%s was recreated: %s@%s → %s@%s", name, b.Container, b.StartedAt, a.Container, a.StartedAt)
		}
	}
}
