package agenttest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// failure records what a check gave up with instead of failing the test.
type failure struct {
	testing.TB
	msg string
}

func (f *failure) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failed runs check and returns why it failed, "" when it passed.
func failed(t *testing.T, check func(testing.TB)) string {
	f := &failure{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(f)
	}()
	<-done
	return f.msg
}

// MetricsReflectLoad passes on the load a real OTel SDK exported to the
// agent and fails on any other: more requests, another error share, a lag
// nobody reported, a row that does not exist.
func TestMetricsReflectLoad(t *testing.T) {
	a, dir := IdleAgent(t, "project: t\ngateway:\n  port: 1\nservices:\n  gateway:\n    public: true\n", "gateway")
	before := Metrics(t, dir)
	mp := testenv.MeterProvider(t, a.Info().OTLP, "gateway", metricdata.DeltaTemporality)
	h, err := mp.Meter("test").Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		status := 201
		if i%4 == 0 {
			status = 503
		}
		h.Record(t.Context(), 0.012, metric.WithAttributes(attribute.String("http.request.method", "POST"),
			attribute.String("http.route", "/api/v1/orders"), attribute.Int("http.response.status_code", status)))
	}
	if err := mp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	orders := Load{Service: "gateway", Kind: state.MetricRoute, Name: "POST /api/v1/orders", Requests: 40, MinErrorPct: 20, MaxErrorPct: 30}
	MetricsReflectLoad(t, dir, before, orders)

	metricsWait = time.Second
	t.Cleanup(func() { metricsWait = 20 * time.Second })
	for _, tt := range []struct {
		change func(*Load)
		want   string
	}{
		{func(l *Load) { l.Requests = 41 }, "40 requests counted, want at least 41"},
		{func(l *Load) { l.MaxErrorPct = 10 }, "25.0% of 40 failed, want 20.0% to 10.0%"},
		{func(l *Load) { l.Lag = true }, "no consumer lag reported"},
		{func(l *Load) { l.Name = "GET /api/v1/orders" }, "0 requests counted"},
	} {
		l := orders
		tt.change(&l)
		if msg := failed(t, func(tb testing.TB) { MetricsReflectLoad(tb, dir, before, l) }); !strings.Contains(msg, tt.want) {
			t.Errorf("MetricsReflectLoad(%+v) failed with %q, want %q", l, msg, tt.want)
		}
	}
}
