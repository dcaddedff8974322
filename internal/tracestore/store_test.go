package tracestore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// clock is a settable time for the age bound.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// trace makes n spans of one trace: a root and its children.
func trace(id, service string, n int, start time.Time) []state.Span {
	spans := make([]state.Span, n)
	for i := range spans {
		spans[i] = state.Span{
			TraceID: id, SpanID: fmt.Sprintf("%016x", i+1), Service: service, Name: fmt.Sprintf("op%d", i),
			Start: start.Add(time.Duration(i) * time.Millisecond), Duration: time.Duration(n-i) * time.Millisecond,
			Attrs: map[string]string{"pad": strings.Repeat("x", 200)},
		}
		if i > 0 {
			spans[i].ParentID = spans[0].SpanID
		}
	}
	return spans
}

func open(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts, func(err error) { t.Errorf("write failed: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ids(t *testing.T, s *Store, q Query) []string {
	t.Helper()
	s.Flush()
	list, err := s.List(q)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(list))
	for i, sum := range list {
		out[i] = sum.TraceID
	}
	return out
}

func TestStoreKeepsTracesAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path, Options{})
	start := time.Now().Add(-time.Minute)
	// A trace arriving in two batches, the root last as exporters send it.
	spans := trace("t1", "orders", 5, start)
	s.Add(spans[1:])
	s.Add(spans[:1])
	s.Add(trace("t2", "payments", 2, start.Add(time.Second)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, Options{})
	defer s.Close()
	got, err := s.Trace("t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Name != "op0" || got[4].ParentID != got[0].SpanID {
		t.Fatalf("t1 after reopen = %+v", got)
	}
	list, err := s.List(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].TraceID != "t2" || list[1].Root != "orders: op0" || list[1].Spans != 5 || list[1].Duration != 5*time.Millisecond {
		t.Errorf("list = %+v, want t2 then t1 with root orders: op0, 5 spans, 5ms", list)
	}
	if got := ids(t, s, Query{Service: "orders"}); len(got) != 1 || got[0] != "t1" {
		t.Errorf("--service orders = %v", got)
	}
	if got := ids(t, s, Query{Since: start.Add(500 * time.Millisecond)}); len(got) != 1 || got[0] != "t2" {
		t.Errorf("since = %v", got)
	}
	if got := ids(t, s, Query{Limit: 1}); len(got) != 1 || got[0] != "t2" {
		t.Errorf("limit 1 = %v", got)
	}
	if _, err := s.Trace("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown trace: err = %v, want ErrNotFound", err)
	}
}

func TestStoreEvictsOldestBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path, Options{MaxSize: 1 << 20})
	start := time.Now()
	// Each trace is some 30 KiB: 1 MiB holds about 34 of them.
	const n = 60
	for i := range n {
		s.Add(trace(fmt.Sprintf("t%03d", i), "orders", 100, start))
		s.Flush() // one arrival each, in order
	}
	got := ids(t, s, Query{})
	if len(got) == n || len(got) < 10 {
		t.Fatalf("%d traces kept of %d, want the size bound to drop some but not nearly all", len(got), n)
	}
	// The newest are kept, the oldest gone.
	if got[0] != fmt.Sprintf("t%03d", n-1) || got[len(got)-1] != fmt.Sprintf("t%03d", n-len(got)) {
		t.Errorf("kept %v…%v, want the newest %d", got[0], got[len(got)-1], len(got))
	}
	if _, err := s.Trace("t000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("oldest trace still there: %v", err)
	}
	if s.size > 1<<20 {
		t.Errorf("size %d over the bound", s.size)
	}
	// Reopening with a smaller bound applies it at once.
	s.Close()
	s = open(t, path, Options{MaxSize: 1 << 18})
	defer s.Close()
	if left := ids(t, s, Query{}); len(left) >= len(got) || len(left) == 0 || left[0] != got[0] {
		t.Errorf("after reopen with a quarter of the size: %d traces (newest %v), want fewer, the newest kept", len(left), left)
	}
}

func TestStoreEvictsByAge(t *testing.T) {
	c := &clock{t: time.Now()}
	s := open(t, filepath.Join(t.TempDir(), FileName), Options{MaxAge: time.Hour, now: c.now})
	defer s.Close()
	s.Add(trace("old", "orders", 2, c.now()))
	s.Flush()
	c.advance(40 * time.Minute)
	s.Add(trace("mid", "orders", 2, c.now()))
	s.Flush()
	c.advance(30 * time.Minute)
	s.Add(trace("new", "orders", 2, c.now()))
	if got := ids(t, s, Query{}); strings.Join(got, ",") != "new,mid" {
		t.Errorf("after 70 minutes = %v, want new,mid (old expired)", got)
	}
	// Nothing arrives, yet expired traces go: the writer's tick evicts too.
	c.advance(50 * time.Minute)
	s.writeMu.Lock()
	s.update(s.evict)
	s.writeMu.Unlock()
	if got := ids(t, s, Query{}); strings.Join(got, ",") != "new" {
		t.Errorf("after 120 minutes = %v, want new", got)
	}
}

func TestReadOnlyWhileWriterHoldsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if s, err := OpenReadOnly(path); s != nil || err != nil {
		t.Fatalf("no file: %v, %v; want an empty answer", s, err)
	}
	w := open(t, path, Options{})
	w.Add(trace("t1", "orders", 3, time.Now()))
	w.Flush()
	if _, err := OpenReadOnly(path); err == nil || !strings.Contains(err.Error(), "held by a running agent") {
		t.Errorf("read-only open while written: err = %v", err)
	}
	w.Close()
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if spans, err := r.Trace("t1"); err != nil || len(spans) != 3 {
		t.Errorf("read-only Trace = %d spans, %v", len(spans), err)
	}
}

func TestAddNeverWaitsAndIsBounded(t *testing.T) {
	var reported error
	s, err := Open(filepath.Join(t.TempDir(), FileName), Options{}, func(err error) { reported = err })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.maxPending = 5000 // the default's 100 000 spans take seconds to write at Close
	// Hold the writer as a stalled disk would: Add must still return, and
	// queue no more than maxPending.
	s.writeMu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 15 {
			s.Add(trace(fmt.Sprintf("t%d", i), "orders", 500, time.Now()))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Add blocked while the writer was busy")
	}
	s.mu.Lock()
	queued := len(s.pending)
	s.mu.Unlock()
	s.writeMu.Unlock()
	if dropped := s.dropped.Load(); queued != 5000 || dropped != 2500 {
		t.Errorf("queued %d (max 5000), dropped %d, want 2500", queued, dropped)
	}
	s.Flush()
	if reported == nil || reported.Error() != "2500 spans dropped: more arrived than the disk took" {
		t.Errorf("reported %v, want the 2500 dropped spans", reported)
	}
}
