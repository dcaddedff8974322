package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
)

// The two gateways of a pair are loaded at the same time, metricsPhase per round, each over half
// of loadConns connections: at any instant both see the same machine. Loaded one after the other,
// two gateways of the same configuration differed by up to 10% in CPU per request on a busy
// 2-core machine, which would hide a 5% budget.
const (
	metricsRounds = 16
	metricsPhase  = time.Second
	// metricsCap bounds a phase's requests; the phase normally ends at metricsPhase first.
	metricsCap = 50_000
)

// BenchmarkGatewayMetricsCPU measures what the kit's metrics cost the gateway: the gateway binary's
// CPU time per proxied request with metrics on (both readers: OTLP export every 2 s to a receiver
// in this process, and the Prometheus registry) against the same binary with
// OTEL_METRICS_EXPORTER=none, loaded together, in rounds. One pair runs with tracing off (metrics
// are then the only telemetry: the strict ratio, on/off), one with tracing exported as under msctl
// (traced-on/off).
func BenchmarkGatewayMetricsCPU(b *testing.B) {
	testenv.SkipShort(b, "starts etcd and four gateway binaries")
	up := startUpstream(b)
	// The untraced gateway exports metrics under /strict, so each side's exports are counted.
	var strictPosts, tracedPosts atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/strict/v1/metrics":
			strictPosts.Add(1)
		case "/v1/metrics":
			tracedPosts.Add(1)
		}
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(receiver.Close)
	etcd := registerUpstream(b, up.Listener.Addr().String())
	otlp := "OTEL_EXPORTER_OTLP_ENDPOINT=" + receiver.URL
	off := "OTEL_METRICS_EXPORTER=none"
	targets := []struct {
		name string
		env  []string
		url  string
		proc *testenv.Proc
	}{
		{name: "on", env: []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=" + receiver.URL + "/strict/v1/metrics"}},
		{name: "off", env: []string{off}},
		{name: "traced-on", env: []string{otlp}},
		{name: "traced-off", env: []string{otlp, off}},
	}
	for i := range targets {
		targets[i].url, targets[i].proc = runGateway(b, etcd, targets[i].env...)
		targets[i].url += benchPath
	}
	cpu := map[string]time.Duration{}
	done := map[string]int{}
	ctx := context.Background()
	for b.Loop() {
		for range metricsRounds {
			for _, pair := range [][2]int{{0, 1}, {2, 3}} {
				var before [2]time.Duration
				for j, i := range pair {
					before[j] = processCPU(b, targets[i].proc.PGID())
				}
				var results [2]loadResult
				err := parallel(2, func(j int) error {
					var err error
					results[j], err = load(ctx, targets[pair[j]].url, metricsCap, loadConns/2, metricsPhase)
					return err
				})
				if err != nil {
					b.Fatalf("gateways %s and %s: %v", targets[pair[0]].name, targets[pair[1]].name, err)
				}
				for j, i := range pair {
					cpu[targets[i].name] += processCPU(b, targets[i].proc.PGID()) - before[j]
					done[targets[i].name] += results[j].done
				}
			}
		}
	}
	if strictPosts.Load() == 0 || tracedPosts.Load() == 0 {
		b.Fatalf("metrics exports: %d untraced, %d traced; an on side that exports nothing measures nothing",
			strictPosts.Load(), tracedPosts.Load())
	}
	perReq := func(name string) float64 { return float64(cpu[name].Microseconds()) / float64(done[name]) }
	for _, t := range targets {
		b.ReportMetric(perReq(t.name), t.name+"-cpu-µs/req")
	}
	b.ReportMetric(perReq("on")/perReq("off"), "on/off")
	b.ReportMetric(perReq("traced-on")/perReq("traced-off"), "traced-on/off")
}

// processCPU is the time the threads of process pid have run, to the nanosecond (the first field of
// each thread's schedstat): a difference of a few percent is lost in the 10 ms ticks of
// /proc/<pid>/stat over rounds of a fraction of a second. Go's threads live as long as the process.
func processCPU(b *testing.B, pid int) time.Duration {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var sum time.Duration
	for _, task := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, task.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended while we looked
		}
		ns, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
		if err != nil {
			b.Fatalf("parse %s/schedstat: %q", task.Name(), data)
		}
		sum += time.Duration(ns)
	}
	return sum
}
