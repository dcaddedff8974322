// Package tracing sets up OpenTelemetry for a service: W3C trace context propagation always, and
// an OTLP/HTTP exporter when an endpoint is configured.
package tracing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Setup installs the global tracer provider and propagator. endpoint is the
// OTEL_EXPORTER_OTLP_ENDPOINT base URL (the /v1/traces path is appended); an empty endpoint leaves
// tracing a no-op, which is not an error. The returned shutdown flushes pending spans.
func Setup(ctx context.Context, service, endpoint string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	endpoint = strings.TrimSpace(endpoint)
	if endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(TracesURL(endpoint)))
	if err != nil {
		return nil, fmt.Errorf("create otlp exporter for %s: %w", endpoint, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", service)))
	if err != nil {
		return nil, fmt.Errorf("build trace resource: %w", err)
	}
	// A short batch timeout keeps the dashboard close to real time; the agent is local.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(500*time.Millisecond)),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// TracesURL turns an OTLP base endpoint into the traces URL, adding a scheme when it is missing.
func TracesURL(endpoint string) string { return SignalURL(endpoint, "traces") }

// SignalURL is the OTLP/HTTP URL of one signal ("traces", "metrics") under a base endpoint, as
// OTEL_EXPORTER_OTLP_ENDPOINT defines it: <endpoint>/v1/<signal>, http:// when no scheme is given.
func SignalURL(endpoint, signal string) string {
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	return strings.TrimRight(endpoint, "/") + "/v1/" + signal
}
