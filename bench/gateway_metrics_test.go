package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/msctl/msctl/internal/testenv"
)

// metricsRequests per gateway are split over loadRounds at loadConns connections: enough CPU time
// (a few seconds, hundreds of 10 ms ticks) for a 5% difference to stand out of the tick rounding.
const metricsRequests = 40_000

// BenchmarkGatewayMetricsCPU measures what the kit's metrics cost the gateway: the gateway binary's
// CPU time per proxied request with metrics on (both readers: OTLP export every 2 s to a receiver
// in this process, and the Prometheus registry) against the same binary with
// OTEL_METRICS_EXPORTER=none, loaded in turn, in rounds. Both pairs run once with tracing off
// (metrics are then the only telemetry: the strict ratio, on/off) and once with tracing exported
// as under msctl (traced-on/off).
func BenchmarkGatewayMetricsCPU(b *testing.B) {
	testenv.SkipShort(b, "starts etcd and four gateway binaries")
	up := startUpstream(b)
	var posts atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/metrics" {
			posts.Add(1)
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
		{name: "on", env: []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=" + receiver.URL + "/v1/metrics"}},
		{name: "off", env: []string{off}},
		{name: "traced-on", env: []string{otlp}},
		{name: "traced-off", env: []string{otlp, off}},
	}
	for i := range targets {
		targets[i].url, targets[i].proc = runGateway(b, etcd, targets[i].env...)
		targets[i].url += benchPath
	}
	cpu := map[string]int64{} // in ticks
	done := map[string]int{}
	ctx := context.Background()
	for b.Loop() {
		for round := range loadRounds {
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				before := groupTicks(b, t.proc.PGID())
				r, err := load(ctx, t.url, metricsRequests/loadRounds, loadConns, phaseLimit)
				if err != nil {
					b.Fatalf("gateway, metrics %s: %v", t.name, err)
				}
				cpu[t.name] += groupTicks(b, t.proc.PGID()) - before
				done[t.name] += r.done
			}
		}
	}
	if posts.Load() == 0 {
		b.Fatal("no gateway exported metrics: the on side measured nothing")
	}
	perReq := func(name string) float64 { return float64(cpu[name]) / userHZ * 1e6 / float64(done[name]) }
	for _, t := range targets {
		b.ReportMetric(perReq(t.name), t.name+"-cpu-µs/req")
	}
	b.ReportMetric(perReq("on")/perReq("off"), "on/off")
	b.ReportMetric(perReq("traced-on")/perReq("traced-off"), "traced-on/off")
}
