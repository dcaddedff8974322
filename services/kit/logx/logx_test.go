package logx

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestContextAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := New("orders", "info", &buf)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled,
	})
	ctx := WithRequestID(trace.ContextWithSpanContext(context.Background(), sc), "req-1")
	log.InfoContext(ctx, "hello", "k", "v")
	log.Debug("hidden at info")

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("one JSON record expected, got %q: %v", buf.String(), err)
	}
	want := map[string]any{
		"msg": "hello", "service": "orders", "k": "v", "request_id": "req-1",
		"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String(),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"debug", "INFO", "", "warn", "error"} {
		if _, err := ParseLevel(s); err != nil {
			t.Errorf("ParseLevel(%q): %v", s, err)
		}
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("ParseLevel accepted loud")
	}
}
