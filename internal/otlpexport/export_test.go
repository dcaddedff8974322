package otlpexport_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/msctl/msctl/internal/otlpexport"
	"github.com/msctl/msctl/internal/testenv"
)

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct{ url, err string }{
		{"http://localhost:4318", ""},
		{"https://tempo.example:443/otlp/", ""},
		{"localhost:4318", "must be an http:// or https:// URL"},
		{"grpc://localhost:4317", "must be an http:// or https:// URL"},
		{"http://", "has no host"},
		{"http://localhost:4318/?x=1", "remove the query"},
		{"http://a b", "is not a URL"},
	} {
		err := otlpexport.CheckURL(tt.url)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("CheckURL(%q) = %v, want %q", tt.url, err, tt.err)
		}
	}
}

func spanRequest(t *testing.T, name string) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "orders")
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName(name)
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRetriesUntilTheEndpointComesUp: a request forwarded while the
// receiver is down arrives once it is up; one the receiver refuses as bad
// is dropped at once, not retried.
func TestRetriesUntilTheEndpointComesUp(t *testing.T) {
	addr := testenv.FreeAddr(t)
	e, err := otlpexport.New("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Forward("traces", "application/x-protobuf", spanRequest(t, "early"))
	testenv.Until(t, 5*time.Second, "a failed attempt", func() bool { return e.Status().LastError != "" })
	sink, _ := testenv.OTLPReceiver(t, addr)
	testenv.Until(t, 10*time.Second, "the retried request arrives", func() bool { return sink.Traces.SpanCount() == 1 })
	if got := sink.Traces.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name(); got != "early" {
		t.Errorf("span %q arrived, want early", got)
	}

	e.Forward("traces", "application/x-protobuf", []byte("not protobuf"))
	testenv.Until(t, 5*time.Second, "the bad request is dropped", func() bool { return e.Status().Dropped == 1 })
	s := e.Status()
	if s.Sent != 1 || !strings.Contains(s.LastError, "400") {
		t.Errorf("status = %+v, want 1 sent and the 400 as last error", s)
	}
}

// TestCloseDeliversWhatIsQueued: the spans services flush as the workspace
// stops still reach the endpoint.
func TestCloseDeliversWhatIsQueued(t *testing.T) {
	addr := testenv.FreeAddr(t)
	sink, _ := testenv.OTLPReceiver(t, addr)
	e, err := otlpexport.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e.Forward("traces", "application/x-protobuf", spanRequest(t, fmt.Sprint("last", i)))
	}
	e.Close()
	if sink.Traces.SpanCount() != 3 {
		t.Errorf("%d spans arrived before Close returned, want 3", sink.Traces.SpanCount())
	}
}
