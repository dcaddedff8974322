// Package metrics sets up OpenTelemetry metrics for a service: one MeterProvider read twice, by a
// periodic OTLP/HTTP export to the agent (delta temporality, when an endpoint is configured) and
// by a Prometheus registry of its own, served as GET /metrics for users who scrape. It also owns
// the kit's instruments (the contract with the agent, see docs/ARCHITECTURE.md "Metrics"):
// kit/httpx, kit/client and kit/bus record through the functions in record.go.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// DefaultInterval is how often metrics are exported over OTLP unless OTEL_METRIC_EXPORT_INTERVAL
// says otherwise: short, so the dashboard's rates follow the load within seconds.
const DefaultInterval = 2 * time.Second

// IntervalEnv is the OpenTelemetry variable for the export interval, in milliseconds.
const IntervalEnv = "OTEL_METRIC_EXPORT_INTERVAL"

// Option tunes Setup.
type Option func(*settings)

type settings struct {
	instance string
	interval time.Duration
}

// WithInstance sets service.instance.id on the resource (INSTANCE_ID).
func WithInstance(id string) Option { return func(s *settings) { s.instance = id } }

// WithInterval sets the OTLP export interval instead of OTEL_METRIC_EXPORT_INTERVAL.
func WithInterval(d time.Duration) Option { return func(s *settings) { s.interval = d } }

// Metrics is a service's meter provider and its /metrics handler.
type Metrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
	inst     *instruments
}

// Setup builds the meter provider, installs it as the global one and makes the kit's instruments
// record into it. endpoint is the OTEL_EXPORTER_OTLP_ENDPOINT base URL (/v1/metrics is appended;
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, a full URL, wins); none means no OTLP export, while
// /metrics is served either way. OTEL_METRICS_EXPORTER picks
// the readers (default both; none turns metrics off). Shutdown flushes the last export.
func Setup(ctx context.Context, service, endpoint string, opts ...Option) (*Metrics, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	if s.interval == 0 {
		d, err := intervalFromEnv(os.LookupEnv)
		if err != nil {
			return nil, err
		}
		s.interval = d
	}
	ex, err := exportersFromEnv(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if !ex.otlp && !ex.prometheus {
		return &Metrics{handler: off("OTEL_METRICS_EXPORTER=none")}, nil
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if s.instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", s.instance))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("build metrics resource: %w", err)
	}

	mpOpts := []sdkmetric.Option{
		sdkmetric.WithResource(res),
		// Exemplars would cost a reservoir offer per recording for every sampled request; the
		// agent reads none, and traces are found by route and time instead.
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter),
	}
	handler := off("OTEL_METRICS_EXPORTER leaves out prometheus")
	if ex.prometheus {
		// A registry of our own: the global one would also carry whatever any library registered there.
		reg := prometheus.NewRegistry()
		scrape, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, fmt.Errorf("create prometheus exporter: %w", err)
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(scrape))
		handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	}
	if url := metricsURL(endpoint, os.LookupEnv); url != "" && ex.otlp {
		exp, err := otlpmetrichttp.New(ctx,
			otlpmetrichttp.WithEndpointURL(url),
			otlpmetrichttp.WithTemporalitySelector(deltaAlways))
		if err != nil {
			return nil, fmt.Errorf("create otlp metric exporter for %s: %w", url, err)
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(s.interval))))
	}
	mp := sdkmetric.NewMeterProvider(mpOpts...)
	inst, err := newInstruments(mp)
	if err != nil {
		_ = mp.Shutdown(ctx)
		return nil, err
	}
	otel.SetMeterProvider(mp)
	current.Store(inst)
	return &Metrics{provider: mp, handler: handler, inst: inst}, nil
}

// off answers GET /metrics when the Prometheus reader is not configured, saying why.
func off(why string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "metrics are not served here: "+why+" (unset it, or add prometheus, to scrape)", http.StatusNotFound)
	})
}

// Handler serves the metrics in Prometheus text format (cumulative, as scrapers expect).
func (m *Metrics) Handler() http.Handler { return m.handler }

// Shutdown stops recording into this provider and flushes the last OTLP export.
func (m *Metrics) Shutdown(ctx context.Context) error {
	if m.provider == nil {
		return nil
	}
	current.CompareAndSwap(m.inst, nil)
	m.inst.unregister()
	if err := m.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush metrics: %w", err)
	}
	return nil
}

// deltaAlways exports what happened since the last export for every instrument kind: the agent
// adds deltas up into its own windows and never has to tell a restarted counter from a reset one.
func deltaAlways(sdkmetric.InstrumentKind) metricdata.Temporality {
	return metricdata.DeltaTemporality
}
