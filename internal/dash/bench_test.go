package dash

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// feedLoad pushes a busy session through the model: 100k spans (as traces
// opened in the waterfall, the largest one 50k spans), 100k log lines and
// 1000 snapshots of 200 traces and 100 events each.
func feedLoad(b *testing.B, h *harness) {
	b.Helper()
	const spans, perTrace = 100_000, 1000
	snap := fixture()
	for range spans / perTrace / 2 {
		h.keys("3", "enter")
		id := h.m.loadingTrace
		h.send(traceMsg{id: id, spans: syntheticSpans(id, perTrace)})
		h.keys("esc")
	}
	h.keys("3", "enter")
	h.send(traceMsg{id: h.m.loadingTrace, spans: syntheticSpans(h.m.loadingTrace, spans/2)})

	lines := make([]state.LogLine, 0, 1000)
	for i := range 100 {
		lines = lines[:0]
		for j := range 1000 {
			lines = append(lines, state.LogLine{
				Time: now.Add(time.Duration(i*1000+j) * time.Millisecond), Service: "orders", Stream: "stdout",
				Text: fmt.Sprintf(`{"level":"INFO","msg":"order placed","order_id":"o-%d","total_cents":%d}`, i*1000+j, j),
			})
		}
		h.logLines(lines)
	}
	for i := range 1000 {
		s := snap
		s.Traces = make([]state.TraceSummary, 200)
		for j := range s.Traces {
			s.Traces[j] = state.TraceSummary{TraceID: fmt.Sprintf("%032x", i*200+j), Root: "gateway: POST /api/v1/orders",
				Services: []string{"gateway", "orders"}, Start: now.Add(time.Duration(i*200+j) * time.Millisecond), Duration: time.Millisecond, Spans: 9}
		}
		s.Events = make([]state.Event, 100)
		for j := range s.Events {
			s.Events[j] = state.Event{Time: now.Add(time.Duration(i*100+j) * time.Millisecond), Subject: fmt.Sprintf("orders.%d", j%7),
				Stream: "ORDERS", MsgID: fmt.Sprintf("m-%d-%d", i, j), Size: 200}
		}
		h.send(snapshotMsg{snap: s, at: now.Add(time.Duration(i) * time.Second)})
	}
}

func syntheticSpans(traceID string, n int) []state.Span {
	out := make([]state.Span, n)
	t0 := now
	for i := range out {
		parent := ""
		if i > 0 {
			parent = fmt.Sprintf("%016x", (i-1)/4)
		}
		out[i] = state.Span{
			TraceID: traceID, SpanID: fmt.Sprintf("%016x", i), ParentID: parent,
			Service: []string{"gateway", "orders", "inventory", "payments"}[i%4], Name: "POST /api/v1/orders",
			Start: t0.Add(time.Duration(i) * time.Microsecond), Duration: time.Duration(n-i) * time.Microsecond,
			Error: i%97 == 0, Attrs: map[string]string{"http.status_code": "200"},
		}
	}
	return out
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkDashIdle is the cost of one idle frame (an unchanged snapshot
// arriving, then View) at 160x48 after a busy session, and the heap the model
// retains after it: that must stay flat however long the session ran.
func BenchmarkDashIdle(b *testing.B) {
	for _, panel := range []string{"1", "3", "5", "6"} {
		b.Run("panel"+panel, func(b *testing.B) {
			before := heapInUse()
			src := &fakeSource{}
			h := newHarnessWith(b, src, 160, 48)
			feedLoad(b, h)
			h.keys(panel)
			if panel == "3" {
				h.keys("enter")
				h.send(traceMsg{id: h.m.loadingTrace, spans: syntheticSpans(h.m.loadingTrace, 100_000)})
			}
			retained := heapInUse() - min(before, heapInUse())
			snap := h.m.snap
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.send(snapshotMsg{snap: snap, at: now.Add(time.Duration(i) * time.Millisecond)})
				_ = h.m.View()
			}
			b.StopTimer()
			b.ReportMetric(float64(retained), "bytes-retained")
			runtime.KeepAlive(h)
		})
	}
}

// BenchmarkDashView is View alone: what a keypress costs to draw.
func BenchmarkDashView(b *testing.B) {
	for _, size := range goldenSizes {
		b.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(b *testing.B) {
			h := newHarnessWith(b, &fakeSource{}, size.w, size.h)
			h.snapshot(fixture())
			h.logLines(fixtureLogs())
			h.keys("5")
			b.ReportAllocs()
			for b.Loop() {
				_ = h.m.View()
			}
		})
	}
}
