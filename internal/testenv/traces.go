package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/internal/infra/freeport"
)

// SendTrace sends one trace the way a service does (kit/tracing: the OTel
// SDK's batcher and OTLP/HTTP exporter) to the receiver at addr
// (host:port): a root span names[0] of service with one child per further
// name, the last child failing. It returns the trace id once the exporter
// delivered it.
func SendTrace(t testing.TB, addr, service string, names ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+addr+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
	)
	tr := tp.Tracer("testenv")
	rctx, root := tr.Start(ctx, names[0], trace.WithSpanKind(trace.SpanKindServer))
	for i, name := range names[1:] {
		_, sp := tr.Start(rctx, name, trace.WithSpanKind(trace.SpanKindClient))
		time.Sleep(time.Millisecond)
		if i == len(names)-2 {
			sp.SetStatus(codes.Error, "failed on purpose")
		}
		sp.End()
	}
	root.End()
	// Shutdown flushes: the exporter has had its answer when it returns.
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("send trace to %s: %v", addr, err)
	}
	return root.SpanContext().TraceID().String()
}

// OTLPSink holds what an OTLPReceiver received, per signal.
type OTLPSink struct {
	Traces  consumertest.TracesSink
	Metrics consumertest.MetricsSink
}

// OTLPReceiver runs the OpenTelemetry collector's own OTLP receiver (HTTP
// only) on addr (host:port), traces and metrics going to the returned
// sink; it stops with the test, or earlier with the returned stop.
func OTLPReceiver(t testing.TB, addr string) (sink *OTLPSink, stop func()) {
	t.Helper()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = addr
	sink = new(OTLPSink)
	set := receivertest.NewNopSettings(f.Type())
	// Both signals on one config share one receiver (and one listener).
	tr, err := f.CreateTraces(context.Background(), set, cfg, &sink.Traces)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := f.CreateMetrics(context.Background(), set, cfg, &sink.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []component.Component{tr, mr} {
		if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = tr.Shutdown(context.Background())
			_ = mr.Shutdown(context.Background())
		})
	}
	t.Cleanup(stop)
	return sink, stop
}

// FreeAddr is a loopback host:port nothing listens on, for a server a test
// starts (or leaves dead on purpose).
func FreeAddr(t testing.TB) string {
	t.Helper()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}
