package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/msctl/msctl/internal/agent/agenttest"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/state"
)

// metricsAgent starts a real agent over an idle two-service workspace and
// exports to its OTLP receiver what orders measured: 9 requests to
// POST /api/v1/orders in (10, 25] ms and one answered 500 there, 4 calls to
// payments, 2 in (2.5, 5] ms and 2 in (5, 10] ms, and a consumer 3
// messages behind. It returns the
// manifest's path.
func metricsAgent(t *testing.T) string {
	t.Helper()
	a, dir := agenttest.IdleAgent(t, "project: top\ngateway:\n  port: 1\nservices:\n  orders:\n    public: true\n  payments: {}\n", "orders", "payments")
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "orders")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	now := pcommon.NewTimestampFromTime(time.Now())
	histogram := func(name string, counts []uint64, attrs map[string]any) {
		h := ms.AppendEmpty()
		h.SetName(name)
		h.SetUnit("s")
		h.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := h.Histogram().DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.ExplicitBounds().FromRaw([]float64{0.0025, 0.005, 0.01, 0.025, 0.1})
		dp.BucketCounts().FromRaw(counts)
		if err := dp.Attributes().FromRaw(attrs); err != nil {
			t.Fatal(err)
		}
	}
	route := func(status int) map[string]any {
		return map[string]any{"http.request.method": "POST", "http.route": "/api/v1/orders", "http.response.status_code": status}
	}
	histogram("http.server.request.duration", []uint64{0, 0, 0, 9, 0, 0}, route(201))
	histogram("http.server.request.duration", []uint64{0, 0, 0, 1, 0, 0}, route(500))
	histogram("http.client.request.duration", []uint64{0, 2, 2, 0, 0, 0}, map[string]any{"peer.service": "payments", "http.response.status_code": 200})
	g := ms.AppendEmpty()
	g.SetName("messaging.consumer.lag")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(now)
	dp.SetIntValue(3)
	dp.Attributes().PutStr("messaging.consumer.group.name", "orders-paid")
	dp.Attributes().PutStr("messaging.destination.name", "payments.evt.charged")
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+a.Info().OTLP+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %s", resp.Status)
	}
	return filepath.Join(dir, manifest.FileName)
}

// TestTop runs msctl top against a real agent that received metrics: the
// table, --json, --service and the usage errors.
func TestTop(t *testing.T) {
	path := metricsAgent(t)
	msctl := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"--file", path, "top"}, args...), &stdout, &stderr, newRootCmd)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := msctl()
	if code != 0 {
		t.Fatalf("top: exit %d: %s", code, errOut)
	}
	inOrder(t, "top", out, []string{
		"SERVICE", "KIND", "NAME", "RPS", "ERR%", "P50", "P99", "LAG\n",
		"orders", "route", "POST /api/v1/orders", "1.0", "10.0", "17.5ms", "24.9ms", "-\n",
		"orders", "edge", "payments", "0.4", "0.0", "5.00ms", "9.90ms", "-\n",
		"orders", "consumer", "orders-paid (payments.evt.charged)", "-", "-", "-", "-", "3\n",
	})

	code, out, errOut = msctl("--json")
	if code != 0 {
		t.Fatalf("top --json: exit %d: %s", code, errOut)
	}
	var mt state.Metrics
	if err := json.Unmarshal([]byte(out), &mt); err != nil {
		t.Fatalf("top --json: %v\n%s", err, out)
	}
	if len(mt.Rows) != 3 || mt.Rows[0].Requests != 10 || mt.Rows[0].ErrorPct != 10 || mt.Rows[2].Lag == nil || *mt.Rows[2].Lag != 3 {
		t.Errorf("top --json rows = %+v", mt.Rows)
	}

	code, out, errOut = msctl("--service", "payments")
	if code != 0 || out != "" || !strings.Contains(errOut, "no metrics yet") {
		t.Errorf("top --service payments: exit %d, stdout %q, stderr %q; want no rows and why", code, out, errOut)
	}
	if code, _, errOut = msctl("--service", "nope"); code != 2 || !strings.Contains(errOut, `unknown service "nope" (services: orders, payments)`) {
		t.Errorf("top --service nope: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut = msctl("--json", "--watch"); code != 2 || !strings.Contains(errOut, "[json watch]") {
		t.Errorf("top --json --watch: exit %d, stderr %q; want a usage error", code, errOut)
	}
}

// frames is top --watch's output; at the second frame it interrupts the
// process as Ctrl-C does.
type frames struct {
	mu  sync.Mutex
	buf bytes.Buffer
	n   int
}

func (f *frames) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n++; f.n == 2 {
		_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
	}
	return f.buf.Write(p)
}

// TestTopWatch: --watch redraws until Ctrl-C, which ends it with 130.
func TestTopWatch(t *testing.T) {
	path := metricsAgent(t)
	var out frames
	var stderr bytes.Buffer
	start := time.Now()
	if code := run([]string{"--file", path, "top", "--watch"}, &out, &stderr, newRootCmd); code != 130 {
		t.Fatalf("top --watch: exit %d, want 130: %s", code, stderr.String())
	}
	got := out.buf.String()
	if n := strings.Count(got, "POST /api/v1/orders"); n != 2 || !strings.Contains(got, "Ctrl-C to stop") {
		t.Errorf("top --watch drew the route %d times, want 2 frames:\n%s", n, got)
	}
	if took := time.Since(start); took < topEvery {
		t.Errorf("two frames in %v, want them %v apart", took, topEvery)
	}
}
