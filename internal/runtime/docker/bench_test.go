package docker_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/testenv"
)

// BenchmarkWarmUp compares a warm `msctl up` (images built and volumes
// initialised; containers removed by the previous down) until everything is
// healthy with docker-compose bringing up the equivalent compose file
// (testdata/compose) on the same images until the same checks pass. It
// reports both times and msctl/compose as a ratio.
//
// Debian's docker-compose is v1, without `up --wait`: its side runs `up -d`
// and polls Docker health and the published ports.
func BenchmarkWarmUp(b *testing.B) {
	testenv.RequireDocker(b)
	composeBin, err := exec.LookPath("docker-compose")
	if err != nil {
		b.Skip("docker-compose not installed (apt-get install -y docker-compose)")
	}
	project := uniqueProject(b)
	path := twoServiceWorkspace(b, project)
	m, err := manifest.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	rt := newRuntime(b, m)
	ctx := context.Background()
	msctlUp := func() time.Duration {
		start := time.Now()
		o, err := orchestrator.New(orchestrator.Options{Manifest: m, Runtime: rt, Grace: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Up(ctx, orchestrator.UpOptions{}); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if err := o.Down(ctx, orchestrator.DownOptions{}); err != nil {
			b.Fatal(err)
		}
		return took
	}
	msctlUp() // cold: builds the images and initialises the volumes

	cli := engine(b)
	alpha, _ := rt.Image("alpha")
	beta, _ := rt.Image("beta")
	cproject := project + "c"
	compose := func(args ...string) {
		cmd := exec.Command(composeBin, append([]string{"-p", cproject, "-f", filepath.Join("testdata", "compose", "docker-compose.yml")}, args...)...)
		cmd.Env = append(os.Environ(), "ALPHA_IMAGE="+alpha, "BETA_IMAGE="+beta, fmt.Sprintf("GATEWAY_PORT=%d", testenv.FreePort(b)))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b.Cleanup(func() { compose("down", "-v", "--remove-orphans") })
	composeUp := func() time.Duration {
		start := time.Now()
		compose("up", "-d")
		waitComposeHealthy(b, cli, cproject)
		took := time.Since(start)
		compose("down")
		return took
	}
	composeUp() // cold: initialises its volumes

	msctlTotal, composeTotal := testenv.TimeBoth(b, msctlUp, composeUp)
	b.ReportMetric(float64(msctlTotal.Milliseconds())/float64(b.N), "msctl-ms/op")
	b.ReportMetric(float64(composeTotal.Milliseconds())/float64(b.N), "compose-ms/op")
	b.ReportMetric(msctlTotal.Seconds()/composeTotal.Seconds(), "msctl/compose")
}

// waitComposeHealthy polls until every container of the compose project is
// running and healthy: Docker's health where there is a healthcheck, else
// the published port answers (/readyz for the services, /healthz on NATS's
// monitoring port) — the checks msctl itself makes.
func waitComposeHealthy(b *testing.B, cli *dockerclient.Client, project string) {
	deadline := time.Now().Add(3 * time.Minute)
	args := filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+project))
	for {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: args})
		if err != nil {
			b.Fatal(err)
		}
		ready := len(cs) == 5
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
