package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/metrics"
)

// receiver is an OTLP/HTTP metrics endpoint decoding with the collector's own pdata library.
type receiver struct {
	mu      sync.Mutex
	exports []pmetric.Metrics
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/metrics" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.exports = append(rc.exports, req.Metrics())
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := pmetricotlp.NewExportResponse().MarshalProto()
	_, _ = w.Write(out)
}

// point is one histogram data point as exported, with its resource.
type point struct {
	resource    pcommon.Map
	temporality pmetric.AggregationTemporality
	dp          pmetric.HistogramDataPoint
}

// points returns the data points of the histogram name over every export so far.
func (rc *receiver) points(name string) []point {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []point
	for _, md := range rc.exports {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if m.Name() != name || m.Type() != pmetric.MetricTypeHistogram {
						continue
					}
					for _, dp := range m.Histogram().DataPoints().All() {
						out = append(out, point{rm.Resource().Attributes(), m.Histogram().AggregationTemporality(), dp})
					}
				}
			}
		}
	}
	return out
}

func TestExportsDeltaHistogramsOverOTLP(t *testing.T) {
	rc := &receiver{}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	ctx := context.Background()
	m, err := metrics.Setup(ctx, "orders", ts.URL, metrics.WithInstance("orders-7"), metrics.WithInterval(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)

	for range 3 {
		metrics.HTTPServer(ctx, "GET", "/api/v1/orders/{id}", 200, 3*time.Millisecond)
	}
	metrics.HTTPServer(ctx, "GET", "", 404, time.Millisecond)
	metrics.HTTPClient(ctx, "GET", "payments", 0, "timeout", 2*time.Second)
	metrics.Process(ctx, "payments.cmd.charge", "payments", "", 20*time.Millisecond)
	testenv.Until(t, 10*time.Second, "first export of the server histogram", func() bool { return len(rc.points(metrics.ServerDuration)) >= 2 })
	// Recorded after the first export: a delta export carries these alone.
	metrics.HTTPServer(ctx, "GET", "/api/v1/orders/{id}", 200, 3*time.Millisecond)
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	var counts []uint64
	for _, p := range rc.points(metrics.ServerDuration) {
		if p.temporality != pmetric.AggregationTemporalityDelta {
			t.Fatalf("server histogram exported as %s, want delta", p.temporality)
		}
		res := p.resource.AsRaw()
		if res["service.name"] != "orders" || res["service.instance.id"] != "orders-7" {
			t.Fatalf("resource = %v", res)
		}
		if b := p.dp.ExplicitBounds().AsRaw(); !slices.Equal(b, metrics.DurationBuckets) {
			t.Fatalf("bounds = %v, want %v", b, metrics.DurationBuckets)
		}
		a := p.dp.Attributes().AsRaw()
		switch a["http.route"] {
		case "/api/v1/orders/{id}":
			if a["http.request.method"] != "GET" || a["http.response.status_code"] != int64(200) {
				t.Fatalf("attributes = %v", a)
			}
			counts = append(counts, p.dp.Count())
		case metrics.Unmatched:
		default:
			t.Fatalf("unexpected route in %v", a)
		}
	}
	// Empty intervals export nothing for a delta series: the recordings arrive as 3, then 1.
	if !slices.Equal(counts, []uint64{3, 1}) {
		t.Fatalf("delta counts of the route = %v, want [3 1]", counts)
	}

	client := rc.points(metrics.ClientDuration)
	if len(client) == 0 {
		t.Fatal("no client histogram exported")
	}
	if a := client[0].dp.Attributes().AsRaw(); a["peer.service"] != "payments" || a["error.type"] != "timeout" || a["http.response.status_code"] != nil {
		t.Fatalf("client attributes = %v", a)
	}
	process := rc.points(metrics.ProcessDuration)
	if len(process) == 0 {
		t.Fatal("no process histogram exported")
	}
	if a := process[0].dp.Attributes().AsRaw(); a["messaging.destination.name"] != "payments.cmd.charge" ||
		a["messaging.consumer.group.name"] != "payments" || len(a) != 2 {
		t.Fatalf("process attributes = %v", a)
	}
}

func TestExportIntervalAndEndpointFromEnvironment(t *testing.T) {
	t.Setenv(metrics.IntervalEnv, "soon")
	if _, err := metrics.Setup(context.Background(), "orders", "http://127.0.0.1:1"); err == nil {
		t.Fatalf("%s=soon accepted", metrics.IntervalEnv)
	}
	t.Setenv(metrics.IntervalEnv, "50")
	rc := &receiver{}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	// The metrics-only endpoint exports metrics without the base endpoint (which would turn on
	// traces too).
	t.Setenv(metrics.MetricsEndpointEnv, ts.URL+"/v1/metrics")
	m, err := metrics.Setup(context.Background(), "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	metrics.HTTPServer(context.Background(), "GET", "/x", 200, time.Millisecond)
	// 50 ms rather than the default 2 s: exported well before the first export the default would
	// make (and long before a flush at shutdown).
	testenv.Until(t, 1500*time.Millisecond, "an export before the default interval", func() bool { return len(rc.points(metrics.ServerDuration)) > 0 })
}

func TestExportersFromEnvironment(t *testing.T) {
	rc := &receiver{}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	ctx := context.Background()
	scrape := func(m *metrics.Metrics) int {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Code
	}

	t.Setenv(metrics.ExportersEnv, "otlp,zipkin")
	if _, err := metrics.Setup(ctx, "orders", ts.URL); err == nil || !strings.Contains(err.Error(), "zipkin") {
		t.Fatalf("an unknown exporter: %v, want an error naming it", err)
	}

	t.Setenv(metrics.ExportersEnv, "none")
	m, err := metrics.Setup(ctx, "orders", ts.URL, metrics.WithInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	metrics.HTTPServer(ctx, "GET", "/x", 200, time.Millisecond)
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code := scrape(m); code != http.StatusNotFound {
		t.Errorf("GET /metrics with none: %d, want 404", code)
	}
	if n := len(rc.points(metrics.ServerDuration)); n != 0 {
		t.Errorf("none exported %d points", n)
	}

	t.Setenv(metrics.ExportersEnv, "prometheus")
	m, err = metrics.Setup(ctx, "orders", ts.URL, metrics.WithInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	metrics.HTTPServer(ctx, "GET", "/x", 200, time.Millisecond)
	if code := scrape(m); code != http.StatusOK {
		t.Errorf("GET /metrics with prometheus: %d, want 200", code)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.points(metrics.ServerDuration)); n != 0 {
		t.Errorf("prometheus alone exported %d points over OTLP", n)
	}
}
