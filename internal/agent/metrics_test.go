package agent

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// The services' buckets (services/kit), in seconds.
var testBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// load records, in half-loads exported one after the other: 200 requests
// to POST /api/v1/orders (10% answered 500, the others in 20 ms, the
// failures in 300 ms), 50 calls to payments (5 answered 503, 5 timed out),
// 30 messages processed (3 failed) and a consumer lag of 7.
func load(t *testing.T, mp *sdkmetric.MeterProvider) {
	t.Helper()
	meter := mp.Meter("test")
	hist := func(name string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(testBuckets...))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	server, client, process := hist(metricServerDuration), hist(metricClientDuration), hist(metricProcessDuration)
	consumer := []attribute.KeyValue{
		attribute.String("messaging.consumer.group.name", "payments-charged"),
		attribute.String("messaging.destination.name", "payments.evt.charged"),
	}
	if _, err := meter.Int64ObservableGauge(metricConsumerLag, metric.WithUnit("{message}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(7, metric.WithAttributes(consumer...))
			return nil
		})); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	route := func(status int) metric.MeasurementOption {
		return metric.WithAttributes(attribute.String("http.request.method", "POST"), attribute.String("http.route", "/api/v1/orders"),
			attribute.Int("http.response.status_code", status))
	}
	for half := range 2 {
		for i := range 100 {
			if i%10 == 0 {
				server.Record(ctx, 0.3, route(500))
			} else {
				server.Record(ctx, 0.02, route(201))
			}
		}
		for i := range 25 {
			attrs := []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.String("peer.service", "payments")}
			switch {
			case i%5 == 0 && half == 0:
				attrs = append(attrs, attribute.Int("http.response.status_code", 503))
			case i%5 == 0:
				attrs = append(attrs, attribute.String("error.type", "timeout"))
			default:
				attrs = append(attrs, attribute.Int("http.response.status_code", 200))
			}
			client.Record(ctx, 0.004, metric.WithAttributes(attrs...))
		}
		for i := range 15 {
			attrs := consumer
			if i%5 == 0 && (half == 0 || i == 0) {
				attrs = append(attrs[:len(attrs):len(attrs)], attribute.String("error.type", "handler"))
			}
			process.Record(ctx, 0.001, metric.WithAttributes(attrs...))
		}
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// checkLoad checks that the figures of service are load's.
func checkLoad(t *testing.T, m state.Metrics, service string) {
	t.Helper()
	rows := map[state.MetricKind]state.MetricRow{}
	for _, r := range m.Rows {
		if r.Service == service {
			if _, dup := rows[r.Kind]; dup {
				t.Errorf("two %s rows for %s: %+v", r.Kind, service, m.Rows)
			}
			rows[r.Kind] = r
		}
	}
	route, edge, cons := rows[state.MetricRoute], rows[state.MetricEdge], rows[state.MetricConsumer]
	if route.Name != "POST /api/v1/orders" || route.Requests != 200 || route.Total != 200 || route.TotalErrors != 20 {
		t.Errorf("route row = %+v, want 200 requests to POST /api/v1/orders, 20 failed", route)
	}
	if route.ErrorPct != 10 || route.RPS != 200/(float64(m.WindowMS)/1000) {
		t.Errorf("route: error %.2f%%, %.2f rps; want 10%% and 200 over the window", route.ErrorPct, route.RPS)
	}
	// Interpolated within the bucket holding them: 20 ms in (10, 25] ms, the
	// slow failures in (250, 500] ms.
	if route.P50MS <= 10 || route.P50MS > 25 || route.P99MS <= 250 || route.P99MS > 500 {
		t.Errorf("route: p50 %.2f ms, p99 %.2f ms; want (10, 25] and (250, 500]", route.P50MS, route.P99MS)
	}
	var inSeries float64
	for _, rps := range route.RPSSeries {
		inSeries += rps * float64(m.StepMS) / 1000
	}
	if inSeries != 200 || slices.Max(route.P99Series) <= 250 {
		t.Errorf("route series: %v requests, p99 up to %v ms; want the 200 and the slow ones", inSeries, slices.Max(route.P99Series))
	}
	if edge.Name != "payments" || edge.Requests != 50 || edge.ErrorPct != 20 || edge.P99MS <= 2.5 || edge.P99MS > 5 {
		t.Errorf("edge row = %+v, want 50 calls to payments, 20%% failed (5 answered 503, 5 unanswered), p99 in (2.5, 5] ms", edge)
	}
	if cons.Name != "payments-charged" || cons.Subject != "payments.evt.charged" || cons.Requests != 30 || cons.ErrorPct != 100.0*4/30 {
		t.Errorf("consumer row = %+v, want 30 messages of payments.evt.charged, 4 failed", cons)
	}
	if cons.Lag == nil || *cons.Lag != 7 || cons.LagSeries[len(cons.LagSeries)-1] != 7 {
		t.Errorf("consumer lag = %v, series %v; want 7", cons.Lag, cons.LagSeries)
	}
}

// A real OTel SDK exports a known load to the agent's receiver, with delta
// and with cumulative temporality: the API shows the same figures for both.
func TestMetricsFromOTelSDK(t *testing.T) {
	_, c := idleClient(t)
	for _, tt := range []struct {
		service     string
		temporality metricdata.Temporality
	}{{"orders", metricdata.DeltaTemporality}, {"users", metricdata.CumulativeTemporality}} {
		load(t, testenv.MeterProvider(t, c.Info().OTLP, tt.service, tt.temporality))
	}
	m, err := c.Metrics(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	checkLoad(t, m, "orders")
	checkLoad(t, m, "users")
	only, err := c.Metrics(t.Context(), "users")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range only.Rows {
		if r.Service != "users" {
			t.Errorf("?service=users answered a row of %s", r.Service)
		}
	}
	if len(only.Rows) != 3 {
		t.Errorf("?service=users: %d rows, want 3", len(only.Rows))
	}
}

// A cumulative series that counted before the agent started is a baseline,
// not a burst of old requests; a counter that went down restarted.
func TestCumulativeBaselines(t *testing.T) {
	agentStart := time.Now()
	b := cumulativeBaselines{}
	if d := b.delta("old", []uint64{5, 5}, agentStart.Add(-time.Hour), agentStart, agentStart); d != nil {
		t.Errorf("first report of a series older than the agent = %v, want none", d)
	}
	if d := b.delta("old", []uint64{6, 9}, agentStart.Add(-time.Hour), agentStart, agentStart); d[0] != 1 || d[1] != 4 {
		t.Errorf("delta = %v, want [1 4]", d)
	}
	if d := b.delta("old", []uint64{2, 0}, agentStart.Add(-time.Hour), agentStart, agentStart); d[0] != 2 || d[1] != 0 {
		t.Errorf("after a reset = %v, want the new counts", d)
	}
}

// The store keeps 5 minutes: older steps leave the window, the series and
// the sparklines; a series silent for the whole ring goes.
func TestMetricStoreSteps(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newMetricStore(func() time.Time { return now })
	k := metricKey{service: "gateway", kind: state.MetricRoute, name: "GET /x"}
	s.addHistogram(k, now, []float64{0.1, 1}, []uint64{4, 0, 0}, false)
	now = now.Add(metricStep)
	s.addHistogram(k, now, []float64{0.1, 1}, []uint64{0, 1, 1}, true)
	r := s.snapshot("").Rows[0]
	if r.Requests != 6 || r.ErrorPct != 100.0*2/6 {
		t.Errorf("requests %d, error %.1f%%; want 6 and 33.3%%", r.Requests, r.ErrorPct)
	}
	if n := len(r.RPSSeries); r.RPSSeries[n-2] != 2 || r.RPSSeries[n-1] != 1 || r.P99Series[n-1] != 1000 {
		t.Errorf("series end %v / %v, want rps 2 then 1 and the overflow's p99 at the top bound", r.RPSSeries[n-2:], r.P99Series[n-2:])
	}
	now = now.Add(metricWindowSteps * metricStep)
	if r := s.snapshot("").Rows[0]; r.Requests != 0 || r.Total != 6 || r.P99MS != 0 {
		t.Errorf("after the window: %+v, want nothing in it and 6 in total", r)
	}
	now = now.Add(metricSteps * metricStep)
	if rows := s.snapshot("").Rows; len(rows) != 0 {
		t.Errorf("after the ring: %+v, want the series gone", rows)
	}
}

// An exporter that leaves a data point's time out is placed on arrival,
// and a consumer without a durable name is shown by its subject.
func TestMetricsWithoutTime(t *testing.T) {
	s := newMetricStore(time.Now)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "notifications")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName(metricConsumerLag)
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(12)
	dp.Attributes().PutStr("messaging.destination.name", "orders.evt.confirmed")
	s.addOTLP(md)
	rows := s.snapshot("notifications").Rows
	if len(rows) != 1 || rows[0].Lag == nil || *rows[0].Lag != 12 || rows[0].Label() != "orders.evt.confirmed" {
		t.Errorf("rows = %+v, want the lag of 12 of orders.evt.confirmed", rows)
	}
}

// A lag reported on the durable's stream shows on the rows of the subjects
// it processed; a durable that processed nothing keeps its lag row.
func TestLagFoldedIntoConsumerRows(t *testing.T) {
	now := time.Now()
	s := newMetricStore(func() time.Time { return now })
	consumer := func(durable, subject string) metricKey {
		return metricKey{service: "orders", kind: state.MetricConsumer, name: durable, subject: subject}
	}
	for _, subject := range []string{"orders.evt.created", "orders.evt.confirmed"} {
		s.addHistogram(consumer("read-model", subject), now, []float64{0.01}, []uint64{1, 0}, false)
	}
	s.setLag(consumer("read-model", "ORDERS_EVT"), now, 5)
	s.setLag(consumer("saga", "PAYMENTS_EVT"), now, 2)
	var got []string
	for _, r := range s.snapshot("orders").Rows {
		lag := "-"
		if r.Lag != nil {
			lag = strconv.FormatInt(*r.Lag, 10)
		}
		got = append(got, r.Label()+" "+lag)
	}
	want := []string{"read-model (orders.evt.confirmed) 5", "read-model (orders.evt.created) 5", "saga (PAYMENTS_EVT) 2"}
	if !slices.Equal(got, want) {
		t.Errorf("rows = %q, want %q", got, want)
	}
}

func TestQuantile(t *testing.T) {
	bounds := []float64{1, 2, 4}
	for _, tt := range []struct {
		q      float64
		counts []uint64
		want   float64
	}{
		{0.5, []uint64{0, 10, 0, 0}, 1.5},
		{0.99, []uint64{0, 0, 10, 0}, 3.98},
		{0.5, []uint64{10, 0, 0, 0}, 0.5},
		{0.99, []uint64{1, 0, 0, 9}, 4},
		{0.5, []uint64{0, 0, 0, 0}, 0},
	} {
		if got := quantile(tt.q, bounds, tt.counts); got < tt.want-1e-9 || got > tt.want+1e-9 {
			t.Errorf("quantile(%v, %v) = %v, want %v", tt.q, tt.counts, got, tt.want)
		}
	}
}
