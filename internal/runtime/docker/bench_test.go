package docker_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	"gopkg.in/yaml.v3"

	msctlagent "github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/secrets"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// BenchmarkWarmUp compares a warm `msctl up` (images built and volumes
// initialised; containers removed by the previous down) until everything is
// healthy with docker-compose bringing up the same containers (images and
// environment read from msctl's, see writeCompose) until the same checks
// pass. It reports both times and msctl/compose as a ratio, for the
// repository's whole shop (shop) and for two echo services (two-services).
// Each warm msctl up is followed, before its down, by an up with nothing
// changed: what `msctl up` has a running agent do (Reconcile), reported as
// unchanged-ms/op.
//
// Debian's docker-compose is v1, without `up --wait`: its side runs `up -d`
// and polls Docker health and the published ports.
func BenchmarkWarmUp(b *testing.B) {
	testenv.RequireDocker(b)
	composeBin, err := exec.LookPath("docker-compose")
	if err != nil {
		b.Skip("docker-compose not installed (apt-get install -y docker-compose; .ci/run installs it)")
	}
	b.Run("shop", func(b *testing.B) {
		path, err := testenv.ShopManifest(b.TempDir(), uniqueProject(b), testenv.FreePort(b))
		if err != nil {
			b.Fatal(err)
		}
		benchWarmUp(b, composeBin, path)
	})
	b.Run("two-services", func(b *testing.B) {
		benchWarmUp(b, composeBin, twoServiceWorkspace(b, uniqueProject(b)))
	})
}

func benchWarmUp(b *testing.B, composeBin, path string) {
	m, err := manifest.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	rt := newRuntime(b, m)
	ctx := context.Background()
	// The workspace secret, as the agent reads it: the shop's orders and
	// payments need their card-vault secret.
	secret, err := secrets.LoadOrCreate(msctlagent.StateDir(m.Dir()))
	if err != nil {
		b.Fatal(err)
	}
	var composeDir string
	var unchanged time.Duration
	msctlUp := func() time.Duration {
		start := time.Now()
		o, err := orchestrator.New(orchestrator.Options{Manifest: m, Runtime: rt, Grace: 5 * time.Second, Secret: secret})
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Up(ctx, orchestrator.UpOptions{}); err != nil {
			// Down first: the supervisor would otherwise keep restarting what
			// failed while the cleanup removes the workspace.
			_ = o.Down(ctx, orchestrator.DownOptions{})
			b.Fatal(err)
		}
		took := time.Since(start)
		if composeDir == "" {
			composeDir = writeCompose(b, m)
		}
		start = time.Now()
		changes, err := o.Reconcile(ctx, m, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(changes) > 0 {
			b.Fatalf("an up with nothing changed changed %+v", changes)
		}
		unchanged += time.Since(start)
		if err := o.Down(ctx, orchestrator.DownOptions{}); err != nil {
			b.Fatal(err)
		}
		return took
	}
	msctlUp() // cold: builds the images and initialises the volumes
	unchanged = 0

	cli := engine(b)
	cproject := m.Project + "c"
	compose := func(args ...string) {
		cmd := exec.Command(composeBin, append([]string{"-p", cproject, "-f", filepath.Join(composeDir, "docker-compose.yml")}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b.Cleanup(func() { compose("down", "-v", "--remove-orphans") })
	containers := len(m.Services) + 3
	composeUp := func() time.Duration {
		start := time.Now()
		compose("up", "-d")
		waitComposeHealthy(b, cli, cproject, containers)
		took := time.Since(start)
		compose("down")
		return took
	}
	composeUp() // cold: initialises its volumes

	msctlTotal, composeTotal := testenv.TimeBoth(b, msctlUp, composeUp)
	b.ReportMetric(float64(msctlTotal.Milliseconds())/float64(b.N), "msctl-ms/op")
	b.ReportMetric(float64(composeTotal.Milliseconds())/float64(b.N), "compose-ms/op")
	b.ReportMetric(msctlTotal.Seconds()/composeTotal.Seconds(), "msctl/compose")
	b.ReportMetric(float64(unchanged.Microseconds())/1000/float64(b.N), "unchanged-ms/op")
}

// writeCompose writes, into a directory of its own, the compose file of
// the workspace m that msctl runs right now: the infra from the images
// msctl's infra containers run, configured as msctl configures them (the
// same broker configuration, the same healthchecks), and each service from
// its container's image and environment, with the databases and roles of
// its DATABASE_URL created at initialisation as msctl's EnsureDatabase
// creates them. Only what names a container differs: INSTANCE_ID and
// ADVERTISE_ADDR. Every port is published on 127.0.0.1; the public
// service on a free port of its own.
func writeCompose(b *testing.B, m *manifest.Manifest) string {
	ctx := context.Background()
	cs, err := engine(b).ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", docker.LabelWorkspace+"="+m.Project))})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	images := map[string]string{}
	var initdb strings.Builder
	services := map[string]any{}
	for _, c := range cs {
		name := c.Labels[docker.LabelComponent]
		images[name] = c.Image
		if c.Labels[docker.LabelKind] != state.KindService {
			continue
		}
		info, err := engine(b).ContainerInspect(ctx, c.ID)
		if err != nil {
			b.Fatal(err)
		}
		env := map[string]string{}
		for _, kv := range info.Config.Env {
			if k, v, _ := strings.Cut(kv, "="); k != "PATH" {
				env[k] = v
			}
		}
		env["INSTANCE_ID"], env["ADVERTISE_ADDR"] = name+"-1", name+":8080"
		if dsn := env["DATABASE_URL"]; dsn != "" {
			u, err := url.Parse(dsn)
			if err != nil {
				b.Fatal(err)
			}
			pw, _ := u.User.Password()
			db := strings.TrimPrefix(u.Path, "/")
			fmt.Fprintf(&initdb, "CREATE ROLE %q LOGIN PASSWORD '%s';\nCREATE DATABASE %q OWNER %q;\nREVOKE ALL ON DATABASE %q FROM PUBLIC;\n",
				u.User.Username(), pw, db, u.User.Username(), db)
		}
		deps := map[string]any{
			"postgres": map[string]string{"condition": "service_healthy"},
			"etcd":     map[string]string{"condition": "service_healthy"},
			"nats":     map[string]string{"condition": "service_started"},
		}
		for _, d := range m.Services[name].DependsOn {
			deps[d] = map[string]string{"condition": "service_started"}
		}
		port := "127.0.0.1::8080"
		if m.Services[name].Public {
			port = fmt.Sprintf("127.0.0.1:%d:8080", testenv.FreePort(b))
		}
		services[name] = map[string]any{"image": c.Image, "environment": env, "ports": []string{port}, "depends_on": deps}
	}
	health := func(test ...string) map[string]any {
		return map[string]any{"test": append([]string{"CMD"}, test...), "interval": "1s", "timeout": "3s", "retries": 3, "start_period": "60s"}
	}
	services["postgres"] = map[string]any{
		"image":       images["postgres"],
		"environment": map[string]string{"POSTGRES_PASSWORD": "bench"},
		"volumes":     []string{"pgdata:/var/lib/postgresql/data", "./initdb:/docker-entrypoint-initdb.d:ro"},
		"ports":       []string{"127.0.0.1::5432"},
		"healthcheck": health("pg_isready", "-U", "postgres", "-h", "127.0.0.1"),
	}
	services["nats"] = map[string]any{
		"image":   images["nats"],
		"command": []string{"--config", "/etc/msctl/nats.conf"},
		"volumes": []string{"natsdata:/data", filepath.Join(testdataCompose(b), "nats.conf") + ":/etc/msctl/nats.conf:ro"},
		"ports":   []string{"127.0.0.1::4222", "127.0.0.1::8222"},
	}
	services["etcd"] = map[string]any{
		"image": images["etcd"],
		"environment": map[string]string{
			"ALLOW_NONE_AUTHENTICATION":  "yes",
			"ETCD_LISTEN_CLIENT_URLS":    "http://0.0.0.0:2379",
			"ETCD_ADVERTISE_CLIENT_URLS": "http://etcd:2379",
		},
		"volumes":     []string{"etcddata:/bitnami/etcd"},
		"ports":       []string{"127.0.0.1::2379"},
		"healthcheck": health("etcdctl", "endpoint", "health"),
	}
	out, err := yaml.Marshal(map[string]any{
		"version":  "2.4",
		"services": services,
		"volumes":  map[string]any{"pgdata": nil, "natsdata": nil, "etcddata": nil},
	})
	if err != nil {
		b.Fatal(err)
	}
	write(b, filepath.Join(dir, "docker-compose.yml"), string(out))
	if err := os.MkdirAll(filepath.Join(dir, "initdb"), 0o755); err != nil {
		b.Fatal(err)
	}
	write(b, filepath.Join(dir, "initdb", "msctl.sql"), initdb.String())
	return dir
}

// testdataCompose is the directory of the broker configuration msctl
// writes into its broker container (natsConf), for compose to mount.
func testdataCompose(b *testing.B) string {
	d, err := filepath.Abs(filepath.Join("testdata", "compose"))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// waitComposeHealthy polls until the compose project's n containers are
// running and healthy: Docker's health where there is a healthcheck, else
// the published port answers (/readyz for the services, /healthz on NATS's
// monitoring port) — the checks msctl itself makes.
func waitComposeHealthy(b *testing.B, cli *dockerclient.Client, project string, n int) {
	deadline := time.Now().Add(3 * time.Minute)
	args := filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+project))
	for {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: args})
		if err != nil {
			b.Fatal(err)
		}
		ready := len(cs) == n
		for _, c := range cs {
			if !ready {
				break
			}
			switch c.Labels["com.docker.compose.service"] {
			case "postgres", "etcd":
				ready = strings.Contains(c.Status, "(healthy)")
			case "nats":
				ready = getOK(hostPort(c, 8222), "/healthz")
			default:
				ready = getOK(hostPort(c, 8080), "/readyz")
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("compose project not healthy within 3 minutes")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func hostPort(c container.Summary, private uint16) string {
	for _, p := range c.Ports {
		if p.PrivatePort == private && p.PublicPort != 0 {
			return net.JoinHostPort(p.IP, fmt.Sprint(p.PublicPort))
		}
	}
	return ""
}

var pollClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func getOK(addr, path string) bool {
	if addr == "" {
		return false
	}
	resp, err := pollClient.Get("http://" + addr + path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
