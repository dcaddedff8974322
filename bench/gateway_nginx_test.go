// Package bench holds the benchmarks that compare msctl with the tools it is
// measured against (DESIGN.md §5), and report/, which runs every §5 benchmark
// and prints the targets as one table.
package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/systest"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/registry"
)

const (
	// benchPath is a public route, so the gateway needs no token.
	benchPath   = "/api/v1/products"
	benchRoutes = benchPath + "=inventory:public"
	// loadRequests per target are split over loadRounds, each at loadConns
	// connections; serialRequests go over one connection for light-load latency.
	// Many short rounds spread the noise of a shared machine over all targets.
	loadRequests   = 20_000
	loadRounds     = 8
	loadConns      = 32
	serialRequests = 2_000
	phaseLimit     = 30 * time.Second
)

var payload = []byte(`[{"id":"p1","sku":"SKU-1","name":"Widget","price_cents":1999,"stock":10}]`)

// BenchmarkGatewayVsNginx puts the same trivial upstream behind the real
// gateway binary (etcd registry, JWKS fetched, rate limiter and breaker on)
// and behind nginx, and loads direct, nginx and gateway in turn, in rounds,
// so machine noise hits all three alike. Under load (32 keep-alive
// connections) it reports throughputs and gw/nginx-ratio; p99 latency is
// reported both under that load and over one connection. The one-connection
// difference (added-p99-ms-1conn) is the §5 "added p99": it is the latency of
// the proxy hop itself. Under load on a small machine the difference is mostly
// queueing behind the load generator and the upstream, so added-p99-ms is
// informational.
func BenchmarkGatewayVsNginx(b *testing.B) {
	testenv.SkipShort(b, "starts etcd, the gateway binary and nginx")
	nginx := nginxPath()
	if nginx == "" {
		b.Skip("nginx is not installed (apt-get install -y nginx); the comparison needs it")
	}
	up := startUpstream(b)
	nginxURL, nginxProc := startNginx(b, nginx, up.Listener.Addr().String())
	gatewayURL, gatewayProc := startGateway(b, up.Listener.Addr().String())
	targets := []struct {
		name, url string
		proc      *testenv.Proc // nil: the upstream runs in this process
	}{
		{"direct", up.URL + benchPath, nil},
		{"nginx", nginxURL + benchPath, nginxProc},
		{"gateway", gatewayURL + benchPath, gatewayProc},
	}
	// cpu is each proxy's CPU time under load: unlike its throughput, it
	// hardly depends on what else the machine runs at the time.
	cpu := map[string]int64{} // in ticks
	loaded := map[string]*loadResult{}
	serial := map[string]*loadResult{}
	for _, t := range targets {
		loaded[t.name], serial[t.name] = &loadResult{}, &loadResult{}
	}
	ctx := context.Background()
	for b.Loop() {
		for round := range loadRounds {
			// Rotate the order so no target always runs right after another.
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				var before int64
				if t.proc != nil {
					before = groupTicks(b, t.proc.PGID())
				}
				r, err := load(ctx, t.url, loadRequests/loadRounds, loadConns, phaseLimit)
				if err != nil {
					b.Fatalf("%s under load: %v", t.name, err)
				}
				if t.proc != nil {
					cpu[t.name] += groupTicks(b, t.proc.PGID()) - before
				}
				loaded[t.name].add(r)
				r, err = load(ctx, t.url, serialRequests/loadRounds, 1, phaseLimit)
				if err != nil {
					b.Fatalf("%s over one connection: %v", t.name, err)
				}
				serial[t.name].add(r)
			}
		}
	}
	for _, t := range targets {
		b.ReportMetric(loaded[t.name].rps(), t.name+"-rps")
		b.ReportMetric(loaded[t.name].pct(0.99), t.name+"-p99-ms")
		b.Logf("%-7s %6d requests, %8.0f req/s, p50 %.2f ms, p99 %.2f ms under load; p50 %.3f ms, p99 %.3f ms over one connection",
			t.name, loaded[t.name].done, loaded[t.name].rps(), loaded[t.name].pct(0.5), loaded[t.name].pct(0.99),
			serial[t.name].pct(0.5), serial[t.name].pct(0.99))
	}
	for _, name := range []string{"nginx", "gateway"} {
		b.ReportMetric(float64(cpu[name])/userHZ*1e6/float64(loaded[name].done), name+"-cpu-µs/req")
	}
	b.ReportMetric(loaded["gateway"].rps()/loaded["nginx"].rps(), "gw/nginx-ratio")
	b.ReportMetric(loaded["gateway"].pct(0.99)-loaded["direct"].pct(0.99), "added-p99-ms")
	b.ReportMetric(loaded["nginx"].pct(0.99)-loaded["direct"].pct(0.99), "nginx-added-p99-ms")
	b.ReportMetric(serial["gateway"].pct(0.99)-serial["direct"].pct(0.99), "added-p99-ms-1conn")
	b.ReportMetric(serial["nginx"].pct(0.99)-serial["direct"].pct(0.99), "nginx-added-p99-ms-1conn")
}

// add merges another run into r: requests and time add up, latencies pool.
func (r *loadResult) add(o loadResult) {
	r.done += o.done
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	slices.Sort(r.lat)
}

func nginxPath() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	// Root's PATH usually has sbin, other users' often not.
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// startUpstream serves the small JSON on every path, and a JWKS document so
// the gateway, which also resolves its auth service to this server, gets the
// signing keys it needs to become ready.
func startUpstream(b *testing.B) *httptest.Server {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": "bench", "use": "sig", "alg": "EdDSA",
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	if err != nil {
		b.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/.well-known/jwks.json" {
			_, _ = w.Write(jwks)
			return
		}
		_, _ = w.Write(payload)
	}))
	b.Cleanup(up.Close)
	return up
}

// startNginx runs nginx in the foreground with the testdata config and
// returns its base URL once it proxies.
func startNginx(b *testing.B, bin, upstream string) (string, *testenv.Proc) {
	dir := b.TempDir()
	port, err := freeport.Get()
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "nginx.conf.tmpl"))
	if err != nil {
		b.Fatal(err)
	}
	var conf bytes.Buffer
	listen := "127.0.0.1:" + strconv.Itoa(port)
	// Workers of a root master drop to nobody, who cannot enter the test's
	// private temporary directory.
	if err := tmpl.Execute(&conf, map[string]any{"Root": os.Geteuid() == 0, "Dir": dir, "Upstream": upstream, "Listen": listen}); err != nil {
		b.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	p := testenv.StartProc(b, "nginx", exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log")), syscall.SIGQUIT)
	url := "http://" + listen
	if err := waitOK(url+benchPath, p, 15*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		b.Fatalf("nginx: %v\n%s%s", err, p.Output(), log)
	}
	return url, p
}

// startGateway builds and runs the gateway binary as a runtime would, with
// the upstream registered in etcd as inventory (the routed service) and as
// users (the JWKS source), and returns its base URL once /readyz passes.
func startGateway(b *testing.B, upstream string) (string, *testenv.Proc) {
	return runGateway(b, registerUpstream(b, upstream))
}

// registerUpstream registers upstream in a fresh etcd as inventory and users
// and returns the etcd endpoints.
func registerUpstream(b *testing.B, upstream string) string {
	etcd := testenv.Etcd(b)
	cli := testenv.EtcdClient(b, etcd)
	ctx := context.Background()
	for _, svc := range []string{"inventory", "users"} {
		r := registry.NewRegistrar(cli, registry.Instance{ID: svc + "-bench", Service: svc, Addr: upstream}, 30*time.Second, slog.New(slog.DiscardHandler))
		if err := r.Register(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Deregister(context.Background()) })
	}
	return strings.Join(etcd.Endpoints(), ",")
}

// runGateway runs the gateway binary resolving through the etcd at
// endpoints, with env added to its environment, and returns its base URL
// once /readyz passes. The rate limit is lifted: one load generator is a
// single client, and nginx limits nothing.
func runGateway(b *testing.B, endpoints string, env ...string) (string, *testenv.Proc) {
	bin := systest.Build(b, "gateway")[0]
	port, err := freeport.Get()
	if err != nil {
		b.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"SERVICE_NAME=gateway",
		"HTTP_ADDR="+addr,
		"ETCD_ENDPOINTS="+endpoints,
		"GATEWAY_ROUTES="+benchRoutes,
		"RATE_LIMIT_RPS=1000000000",
		"RATE_LIMIT_BURST=1000000000",
		"SHUTDOWN_TIMEOUT=2s",
	)
	cmd.Env = append(cmd.Env, env...)
	p := testenv.StartProc(b, "gateway", cmd, syscall.SIGTERM)
	url := "http://" + addr
	if err := waitOK(url+"/readyz", p, 30*time.Second); err != nil {
		b.Fatalf("gateway: %v\n%s", err, p.Output())
	}
	return url, p
}

// waitOK polls url until it answers 200, the process exits, or d passes.
func waitOK(url string, p *testenv.Proc, d time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(d)
	last := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		if p.Exited() {
			return errors.New("exited before it was ready")
		}
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("GET %s not 200 within %s: %w", url, d, last)
}

// groupTicks is the utime+stime of every live process of process group pgid,
// in userHZ ticks.
func groupTicks(b *testing.B, pgid int) int64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		// Processes come and go while we look; a vanished one is not ours.
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields count from after the command's closing parenthesis, where
		// state is field 3: pgrp is field 5, utime 14 and stime 15.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) < 13 || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		utime, err1 := strconv.ParseInt(fields[11], 10, 64)
		stime, err2 := strconv.ParseInt(fields[12], 10, 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("parse %s/stat: %q", e.Name(), data)
		}
		sum += utime + stime
	}
	return sum
}
