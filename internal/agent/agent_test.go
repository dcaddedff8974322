package agent

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/msctl/msctl/internal/runtime/local"
	"github.com/msctl/msctl/internal/testenv"
)

// startIdle starts an agent over a one-service workspace without bringing
// anything up: enough for the API, the lock and the OTLP receiver.
func startIdle(t *testing.T) *Agent {
	t.Helper()
	return startIdleIn(t, t.TempDir())
}

// idleClient starts an idle agent and connects to it, as the CLI does.
func idleClient(t *testing.T) (*Agent, *Client) {
	t.Helper()
	a := startIdle(t)
	c, err := Connect(a.m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

// startIdleIn is startIdle in a given workspace directory.
func startIdleIn(t *testing.T, dir string) *Agent {
	t.Helper()
	return startIdleWith(t, dir, "")
}

// startIdleWith is startIdleIn with more top-level msctl.yaml sections.
func startIdleWith(t *testing.T, dir, extra string) *Agent {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "services", "echo"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := testenv.Manifest(t, dir, "project: t\ngateway:\n  port: 1\nservices:\n  echo:\n    public: true\n"+extra)
	rt, err := local.New(local.Options{StateDir: StateDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Start(Options{Manifest: m, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Down(context.Background(), false) })
	return a
}

func exportRequest() ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "orders")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	tid := pcommon.TraceID([16]byte{1, 2, 3})
	start := time.Now()
	root := spans.AppendEmpty()
	root.SetTraceID(tid)
	root.SetSpanID(pcommon.SpanID([8]byte{1}))
	root.SetName("POST /api/v1/orders")
	root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(30 * time.Millisecond)))
	child := spans.AppendEmpty()
	child.SetTraceID(tid)
	child.SetSpanID(pcommon.SpanID([8]byte{2}))
	child.SetParentSpanID(pcommon.SpanID([8]byte{1}))
	child.SetName("charge")
	child.Status().SetCode(ptrace.StatusCodeError)
	child.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(5 * time.Millisecond)))
	child.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(10 * time.Millisecond)))
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func TestOTLPReceiverAndTraceAPI(t *testing.T) {
	_, c := idleClient(t)
	req := exportRequest()
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	for _, tt := range []struct {
		ctype string
		body  []byte
	}{{"application/x-protobuf", pb}, {"application/json", js}} {
		resp, err := http.Post("http://"+c.Info().OTLP+"/v1/traces", tt.ctype, bytes.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s export: %s", tt.ctype, resp.Status)
		}
	}
	snap, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Traces) != 1 {
		t.Fatalf("traces = %+v, want one", snap.Traces)
	}
	// The same spans twice (an exporter's retry) are stored once.
	sum := snap.Traces[0]
	if sum.Root != "orders: POST /api/v1/orders" || sum.Spans != 2 || sum.Errors != 1 || sum.Duration != 30*time.Millisecond {
		t.Errorf("summary = %+v", sum)
	}
	spans, err := c.Trace(t.Context(), sum.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || spans[0].Name != "POST /api/v1/orders" || spans[len(spans)-1].ParentID == "" {
		t.Errorf("spans = %+v", spans)
	}
	if _, err := c.Trace(t.Context(), "ffff"); err == nil {
		t.Error("unknown trace: no error")
	}
}

func TestAPINeedsToken(t *testing.T) {
	a := startIdle(t)
	resp, err := http.Get("http://" + a.Info().Addr + "/api/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %s, want 401", resp.Status)
	}
	fi, err := os.Stat(infoPath(a.stateDir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("agent.json mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOneAgentPerWorkspace(t *testing.T) {
	a := startIdle(t)
	if _, err := Start(Options{Manifest: a.m, Runtime: a.rt}); err != ErrAlreadyRunning {
		t.Errorf("second agent: err = %v, want ErrAlreadyRunning", err)
	}
	c, err := Connect(a.m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Down(t.Context(), false) }()
	select {
	case <-a.DownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("down request not delivered")
	}
	if err := a.Down(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(a.m.Dir()); err != ErrNotRunning {
		t.Errorf("after down: Connect err = %v, want ErrNotRunning", err)
	}
}
