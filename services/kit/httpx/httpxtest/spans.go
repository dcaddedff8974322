package httpxtest

import (
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// RecordSpans makes the global tracer provider record every ended span in memory until the test
// ends. Call it before building the server: httpx takes its tracer when it is built. Tests that
// use it must not run in parallel, the provider is global.
func RecordSpans(t testing.TB) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(prev)
		_ = tp.Shutdown(t.Context())
	})
	return rec
}

// ServerSpans is the name and http.route ("" when absent) of every ended server span, oldest
// first; client spans of calls the handlers made are left out.
func ServerSpans(rec *tracetest.SpanRecorder) [][2]string {
	var out [][2]string
	for _, s := range rec.Ended() {
		if s.SpanKind() != trace.SpanKindServer {
			continue
		}
		route := ""
		for _, a := range s.Attributes() {
			if a.Key == "http.route" {
				route = a.Value.AsString()
			}
		}
		out = append(out, [2]string{s.Name(), route})
	}
	return out
}
