package panels

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

var t0 = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

func sp(id, parent string, start, dur int) state.Span {
	return state.Span{SpanID: id, ParentID: parent, Service: "svc", Name: id,
		Start: t0.Add(time.Duration(start) * time.Millisecond), Duration: time.Duration(dur) * time.Millisecond}
}

func layout(w *Waterfall) []string {
	var out []string
	for _, r := range w.rows {
		out = append(out, fmt.Sprintf("%s%s", strings.Repeat(".", r.depth), r.span.SpanID))
	}
	return out
}

func TestWaterfallLayout(t *testing.T) {
	tests := []struct {
		name  string
		spans []state.Span
		want  []string
	}{
		{"empty", nil, nil},
		{"parent before children, siblings by start", []state.Span{
			sp("c2", "root", 20, 5), sp("root", "", 0, 50), sp("c1", "root", 10, 5), sp("g1", "c1", 11, 2),
		}, []string{"root", ".c1", "..g1", ".c2"}},
		{"a span whose parent is missing is a root", []state.Span{
			sp("a", "", 0, 10), sp("orphan", "gone", 5, 1),
		}, []string{"a", "orphan"}},
		{"a parent cycle is still drawn", []state.Span{
			sp("x", "y", 0, 1), sp("y", "x", 1, 1), sp("self", "self", 2, 1),
		}, []string{"self", "x", ".y"}}, // its own parent: a root
		{"a duplicated span id is drawn once per span", []state.Span{
			sp("r", "", 0, 10), sp("d", "r", 1, 1), sp("d", "r", 2, 1),
		}, []string{"r", ".d", ".d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := layout(NewWaterfall("t", tt.spans)); !slices.Equal(got, tt.want) {
				t.Errorf("layout = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWaterfallIsCapped(t *testing.T) {
	n := MaxWaterfallSpans * 5
	spans := make([]state.Span, n)
	for i := range spans {
		// reversed start order: the cap must keep the earliest, not the first given
		spans[i] = sp(fmt.Sprint(i), "", n-i, 1)
	}
	w := NewWaterfall("big", spans)
	if w.Len() != MaxWaterfallSpans {
		t.Fatalf("Len = %d, want %d", w.Len(), MaxWaterfallSpans)
	}
	if first := w.rows[0].span.SpanID; first != fmt.Sprint(n-1) {
		t.Errorf("first row is span %s, want the earliest, %d", first, n-1)
	}
	view := w.View(theme.Default, 80, 24)
	if !strings.Contains(view, fmt.Sprintf("showing the first %d of %d spans", MaxWaterfallSpans, n)) {
		t.Errorf("the view does not say it is capped:\n%s", view)
	}
	if got := len(strings.Split(view, "\n")); got != 24 {
		t.Errorf("view has %d lines, want 24", got)
	}
}

func TestWaterfallScale(t *testing.T) {
	w := NewWaterfall("t", []state.Span{sp("root", "", 0, 100), sp("half", "root", 50, 50), sp("tiny", "root", 99, 0)})
	tests := []struct {
		span          int
		wantOff, want int
	}{
		{0, 0, 40},
		{1, 20, 20},
		{2, 39, 1}, // zero length still shows one cell, inside the axis
	}
	for _, tt := range tests {
		off, n := w.scale(w.rows[tt.span].span, 40)
		if off != tt.wantOff || n != tt.want {
			t.Errorf("%s: scale = (%d, %d), want (%d, %d)", w.rows[tt.span].span.SpanID, off, n, tt.wantOff, tt.want)
		}
	}
}

func TestLogsStayBounded(t *testing.T) {
	p := NewLogs(100)
	for i := range 50 {
		batch := make([]state.LogLine, 100)
		for j := range batch {
			batch[j] = state.LogLine{Time: t0, Service: "orders", Text: fmt.Sprintf("line %d", i*100+j)}
		}
		p.Append(batch)
	}
	if p.buf.Len() != 100 || len(p.match) != 100 {
		t.Fatalf("holding %d lines, %d matches; want 100 each", p.buf.Len(), len(p.match))
	}
	if c := cap(p.match); c > 4*p.buf.Cap() {
		t.Errorf("match index capacity grew to %d", c)
	}
	view := p.View(theme.Default, 80, 5)
	if !strings.Contains(view, "line 4999") || strings.Contains(view, "line 4995") {
		t.Errorf("view does not end with the newest lines:\n%s", view)
	}
}

func TestWidths(t *testing.T) {
	cols := []column{{min: 10}, {min: 5, flex: 1}, {min: 5, max: 8, flex: 3}, {title: "ERR", min: 4}}
	content := []int{12, 20, 6, 1} // the last column's title is wider than its cells
	tests := []struct {
		width int
		want  []int
	}{
		{46, []int{12, 20, 6, 3}}, // exactly the content
		{80, []int{12, 52, 8, 3}}, // 34 left: the capped column takes 2, the open one the rest
		{30, []int{12, 5, 5, 3}},  // 16 too many: the free-text column first, then the capped one
		{20, []int{10, 5, 5, 3}},  // too narrow: the name column down to its min, the line is cut later
	}
	for _, tt := range tests {
		if got := widths(cols, content, tt.width); !slices.Equal(got, tt.want) {
			t.Errorf("widths(%d) = %v, want %v", tt.width, got, tt.want)
		}
	}
}

func TestFormats(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{Age(-time.Second), "0s"},
		{Age(59 * time.Second), "59s"},
		{Age(61 * time.Second), "1m01s"},
		{Age(2*time.Hour + 3*time.Minute), "2h03m"},
		{Age(50 * time.Hour), "2d02h"},
		{Dur(500 * time.Nanosecond), "500ns"},
		{Dur(1500 * time.Nanosecond), "1.50µs"},
		{Dur(48200 * time.Microsecond), "48.2ms"},
		{Dur(999 * time.Millisecond), "999ms"},
		{Dur(3 * time.Second), "3.00s"},
		{Line("abcdef", 4), "abc…"},
		{Line("ab", 4), "ab  "},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
