package testenv

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// MeterProvider is a real OTel SDK exporting metrics over OTLP/HTTP to the
// receiver at endpoint (host:port) as instance 1 of service, with the given
// temporality. It exports only when flushed (ForceFlush), so a test decides
// what one export holds; it is shut down at cleanup.
func MeterProvider(t testing.TB, endpoint, service string, temporality metricdata.Temporality) *sdkmetric.MeterProvider {
	t.Helper()
	exp, err := otlpmetrichttp.New(t.Context(), otlpmetrichttp.WithEndpoint(endpoint), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithTemporalitySelector(func(sdkmetric.InstrumentKind) metricdata.Temporality { return temporality }))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service), attribute.String("service.instance.id", service+"-1"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}
