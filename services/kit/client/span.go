package client

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"
)

// tracer is resolved through the global provider on every call, so a provider installed after
// the client was built (tracing.Setup) still takes effect.
func tracer() trace.Tracer { return otel.Tracer("github.com/msctl/msctl/services/kit/client") }

// spanNames are the client span names per method, built once: naming a span must not allocate on
// every call.
type spanNames map[string]string

func newSpanNames(service string) spanNames {
	n := spanNames{}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		n[m] = m + " " + service
	}
	return n
}

// startSpan opens the one client span of an attempt and puts its trace context into h. Without an
// exporter the span does not record, and the incoming trace context passes through unchanged.
func (c *Client) startSpan(ctx context.Context, method string, h http.Header) (context.Context, trace.Span) {
	name, ok := c.spans[method]
	if !ok {
		name = method + " " + c.service
	}
	ctx, span := tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPRequestMethodKey.String(method))
	}
	return ctx, span
}

// endSpan records the outcome at the answer's headers; a 4xx or 5xx answer or no answer (err set,
// status 0) is an error of the call.
func endSpan(span trace.Span, host, path string, status int, err error) {
	if span.IsRecording() {
		span.SetAttributes(semconv.ServerAddress(host), semconv.URLPath(path))
		switch {
		case err != nil:
			span.SetStatus(codes.Error, err.Error())
		case status >= 400:
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			span.SetStatus(codes.Error, "")
		default:
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		}
	}
	span.End()
}
