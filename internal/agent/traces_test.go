package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/msctl/msctl/internal/testenv"
)

// TestTracesSurviveAgentRestart: spans sent by the OTel SDK to one agent
// are listed and shown, with every span, by the next agent of the workspace.
func TestTracesSurviveAgentRestart(t *testing.T) {
	dir := t.TempDir()
	a := startIdleIn(t, dir)
	id := testenv.SendTrace(t, a.Info().OTLP, "orders", "POST /api/v1/orders", "reserve", "charge")
	if err := a.Down(t.Context(), false); err != nil {
		t.Fatal(err)
	}

	startIdleIn(t, dir)
	c, err := Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Traces(t.Context(), "orders", time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].TraceID != id || list[0].Root != "orders: POST /api/v1/orders" || list[0].Spans != 3 || list[0].Errors != 1 {
		t.Fatalf("traces after restart = %+v, want %s: orders: POST /api/v1/orders, 3 spans, 1 error", list, id)
	}
	if other, err := c.Traces(t.Context(), "payments", 0, 0); err != nil || len(other) != 0 {
		t.Errorf("--service payments = %+v, %v; want none", other, err)
	}
	spans, err := c.Trace(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sp := range spans {
		names = append(names, sp.Name)
		if sp.Name != "POST /api/v1/orders" && sp.ParentID != spans[0].SpanID {
			t.Errorf("span %s: parent %q, want the root %s", sp.Name, sp.ParentID, spans[0].SpanID)
		}
	}
	if strings.Join(names, ",") != "POST /api/v1/orders,reserve,charge" {
		t.Errorf("spans = %v, want the root then reserve, charge", names)
	}
	snap, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Traces) != 1 || snap.Traces[0].TraceID != id {
		t.Errorf("snapshot traces = %+v, want the stored one (the dashboard's list)", snap.Traces)
	}
	if snap.Export != nil {
		t.Errorf("snapshot export = %+v without observability.export", snap.Export)
	}
}

// TestExportReachesOTLPReceiver: with observability.export the agent
// forwards what services send, traces and metrics, to a real OpenTelemetry
// collector receiver.
func TestExportReachesOTLPReceiver(t *testing.T) {
	addr := testenv.FreeAddr(t)
	sink, _ := testenv.OTLPReceiver(t, addr)
	a := startIdleWith(t, t.TempDir(), "observability:\n  export: http://"+addr+"\n")
	testenv.SendTrace(t, a.Info().OTLP, "payments", "POST /internal/charge", "INSERT payments")
	mp := testenv.MeterProvider(t, a.Info().OTLP, "payments", metricdata.DeltaTemporality)
	h, err := mp.Meter("test").Float64Histogram("http.server.request.duration")
	if err != nil {
		t.Fatal(err)
	}
	h.Record(t.Context(), 0.02)
	if err := mp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 10*time.Second, "the receiver gets the spans", func() error {
		if sink.Traces.SpanCount() < 2 {
			return fmt.Errorf("%d spans arrived", sink.Traces.SpanCount())
		}
		return nil
	})
	var names []string
	for _, td := range sink.Traces.AllTraces() {
		rss := td.ResourceSpans()
		for i := range rss.Len() {
			svc, _ := rss.At(i).Resource().Attributes().Get("service.name")
			if svc.AsString() != "payments" {
				t.Errorf("service.name = %q, want payments", svc.AsString())
			}
			eachSpan(rss.At(i), func(sp ptrace.Span) { names = append(names, sp.Name()) })
		}
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "INSERT payments,POST /internal/charge" {
		t.Errorf("spans at the receiver = %v", names)
	}
	testenv.Eventually(t, 10*time.Second, "the receiver gets the metrics", func() error {
		ms := sink.Metrics.AllMetrics()
		if len(ms) == 0 {
			return errors.New("none arrived")
		}
		rm := ms[0].ResourceMetrics().At(0)
		svc, _ := rm.Resource().Attributes().Get("service.name")
		if name := rm.ScopeMetrics().At(0).Metrics().At(0).Name(); svc.AsString() != "payments" || name != "http.server.request.duration" {
			return fmt.Errorf("%s of service %q arrived", name, svc.AsString())
		}
		return nil
	})
	c, err := Connect(a.m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	// The receiver consumes before it answers: the exporter counts a
	// moment after.
	testenv.Eventually(t, 5*time.Second, "the snapshot counts both sent", func() error {
		snap, err := c.Snapshot(t.Context())
		if err != nil {
			return err
		}
		if e := snap.Export; e == nil || e.URL != "http://"+addr || e.Sent != 2 || e.Dropped != 0 {
			return fmt.Errorf("snapshot export = %+v, want 2 sent (traces, metrics) to http://%s", e, addr)
		}
		return nil
	})
}

func eachSpan(rs ptrace.ResourceSpans, fn func(ptrace.Span)) {
	for j := range rs.ScopeSpans().Len() {
		spans := rs.ScopeSpans().At(j).Spans()
		for k := range spans.Len() {
			fn(spans.At(k))
		}
	}
}

// TestDeadExportEndpointNeitherBlocksNorGrows: with nothing listening at
// the export endpoint the receiver answers as fast as ever, and what waits
// to be forwarded stays bounded, the rest counted as dropped.
func TestDeadExportEndpointNeitherBlocksNorGrows(t *testing.T) {
	a := startIdleWith(t, t.TempDir(), "observability:\n  export: http://"+testenv.FreeAddr(t)+"/otlp\n")
	body, _ := exportRequest().MarshalProto()
	const n = 2000
	begin := time.Now()
	for range n {
		resp, err := http.Post("http://"+a.Info().OTLP+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("export: %s", resp.Status)
		}
	}
	// One retry round alone takes seconds: this proves nobody waited on it.
	if took := time.Since(begin); took > 20*time.Second {
		t.Errorf("%d exports took %s with the endpoint dead", n, took)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := Connect(a.m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := snap.Export
	if e == nil {
		t.Fatal("no export status in the snapshot")
	}
	// The queue holds at most 512 requests, the sender one more.
	if e.Queued > 512 || e.Sent != 0 || e.Dropped < n-513 || !strings.Contains(e.LastError, "/otlp/v1/traces") {
		t.Errorf("export = %+v, want ≤512 queued, ≥%d dropped, the last error naming the URL", e, n-513)
	}
}
