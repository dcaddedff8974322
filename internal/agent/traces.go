package agent

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/msctl/msctl/internal/state"
)

// traceStore keeps the most recent traces, bounded both in traces and in
// spans: when either bound is passed the oldest trace goes.
type traceStore struct {
	maxTraces, maxSpans int

	mu     sync.Mutex
	traces map[string]*trace
	order  []string // trace ids, oldest first
	spans  int
}

type trace struct {
	spans []state.Span
}

func newTraceStore(maxTraces, maxSpans int) *traceStore {
	return &traceStore{maxTraces: maxTraces, maxSpans: maxSpans, traces: map[string]*trace{}}
}

func (s *traceStore) add(spans []state.Span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		t := s.traces[sp.TraceID]
		if t == nil {
			t = &trace{}
			s.traces[sp.TraceID] = t
			s.order = append(s.order, sp.TraceID)
		}
		t.spans = append(t.spans, sp)
		s.spans++
	}
	for len(s.order) > 0 && (len(s.order) > s.maxTraces || s.spans > s.maxSpans) {
		id := s.order[0]
		s.order = s.order[1:]
		s.spans -= len(s.traces[id].spans)
		delete(s.traces, id)
	}
}

// get returns the spans of one trace, ordered by start.
func (s *traceStore) get(id string) ([]state.Span, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.traces[id]
	if !ok {
		return nil, false
	}
	out := slices.Clone(t.spans)
	slices.SortStableFunc(out, func(a, b state.Span) int { return a.Start.Compare(b.Start) })
	return out, true
}

// summaries describes the newest traces, newest first.
func (s *traceStore) summaries(limit int) []state.TraceSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]state.TraceSummary, 0, min(limit, len(s.order)))
	for i := len(s.order) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, summarize(s.order[i], s.traces[s.order[i]].spans))
	}
	return out
}

func summarize(id string, spans []state.Span) state.TraceSummary {
	sum := state.TraceSummary{TraceID: id, Spans: len(spans)}
	var end time.Time
	var root *state.Span
	seen := map[string]bool{}
	ids := map[string]bool{}
	for i := range spans {
		ids[spans[i].SpanID] = true
	}
	for i := range spans {
		sp := &spans[i]
		if sum.Start.IsZero() || sp.Start.Before(sum.Start) {
			sum.Start = sp.Start
		}
		if e := sp.Start.Add(sp.Duration); e.After(end) {
			end = e
		}
		if sp.Error {
			sum.Errors++
		}
		if !seen[sp.Service] {
			seen[sp.Service] = true
			sum.Services = append(sum.Services, sp.Service)
		}
		// The root has no parent; until it arrives, the earliest span whose
		// parent we have not seen stands in.
		if rootRank(sp, ids) < rootRank(root, ids) || root != nil && rootRank(sp, ids) == rootRank(root, ids) && sp.Start.Before(root.Start) {
			root = sp
		}
	}
	slices.Sort(sum.Services)
	if root != nil {
		sum.Root = root.Service + ": " + root.Name
	}
	sum.Duration = end.Sub(sum.Start)
	return sum
}

// rootRank orders root candidates: a span without parent first, then one
// whose parent is missing, then the rest; nil last.
func rootRank(sp *state.Span, ids map[string]bool) int {
	switch {
	case sp == nil:
		return 3
	case sp.ParentID == "":
		return 0
	case !ids[sp.ParentID]:
		return 1
	default:
		return 2
	}
}

// tracesHandler receives OTLP/HTTP trace exports into store.
func tracesHandler(store *traceStore) http.Handler {
	return otlpReceiver(ptraceotlp.NewExportRequest, ptraceotlp.NewExportResponse, func(req ptraceotlp.ExportRequest) {
		store.add(spansOf(req.Traces()))
	})
}

// spansOf flattens pdata traces into snapshot spans.
func spansOf(td ptrace.Traces) []state.Span {
	var out []state.Span
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		service := "unknown"
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			service = v.AsString()
		}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				s := state.Span{
					TraceID:  sp.TraceID().String(),
					SpanID:   sp.SpanID().String(),
					Service:  service,
					Name:     sp.Name(),
					Kind:     strings.ToLower(sp.Kind().String()),
					Start:    sp.StartTimestamp().AsTime(),
					Duration: sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()),
					Error:    sp.Status().Code() == ptrace.StatusCodeError,
				}
				if p := sp.ParentSpanID(); !p.IsEmpty() {
					s.ParentID = p.String()
				}
				if sp.Attributes().Len() > 0 {
					s.Attrs = make(map[string]string, sp.Attributes().Len())
					sp.Attributes().Range(func(k string, v pcommon.Value) bool {
						s.Attrs[k] = v.AsString()
						return true
					})
				}
				out = append(out, s)
			}
		}
	}
	return out
}
