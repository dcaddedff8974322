package panels

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// MaxWaterfallSpans caps the spans a waterfall keeps: a trace of a runaway
// loop must not make the dashboard hold (or draw) all of it.
const MaxWaterfallSpans = 1000

// maxIndent caps the indentation so deep traces still show their names.
const maxIndent = 12

// Waterfall is one trace drawn as spans across services on a shared time axis.
type Waterfall struct {
	TraceID  string
	rows     []wfRow
	total    int // spans received, before the cap
	start    time.Time
	dur      time.Duration
	services []string
	errors   int
	cur      cursor
}

type wfRow struct {
	span  state.Span
	depth int
}

// NewWaterfall lays spans out parent before children, siblings by start
// time. When there are more than MaxWaterfallSpans it keeps the earliest.
// It does not retain spans.
func NewWaterfall(traceID string, spans []state.Span) *Waterfall {
	w := &Waterfall{TraceID: traceID, total: len(spans)}
	if len(spans) == 0 {
		return w
	}
	svcs := map[string]bool{}
	end := spans[0].Start.Add(spans[0].Duration)
	w.start = spans[0].Start
	for _, s := range spans {
		svcs[s.Service] = true
		if s.Error {
			w.errors++
		}
		if s.Start.Before(w.start) {
			w.start = s.Start
		}
		if e := s.Start.Add(s.Duration); e.After(end) {
			end = e
		}
	}
	w.dur = end.Sub(w.start)
	w.services = slices.Sorted(maps.Keys(svcs))

	// Sort indices, not spans: the input may be huge and only the kept part is copied.
	idx := make([]int32, len(spans))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return spans[a].Start.Compare(spans[b].Start) })
	idx = idx[:min(len(idx), MaxWaterfallSpans)]

	kept := make(map[string]bool, len(idx))
	for _, i := range idx {
		kept[spans[i].SpanID] = true
	}
	children := map[string][]int32{}
	var roots []int32
	for _, i := range idx {
		if p := spans[i].ParentID; p != "" && p != spans[i].SpanID && kept[p] {
			children[p] = append(children[p], i)
		} else {
			roots = append(roots, i)
		}
	}
	// Depth-first with an explicit stack: a long chain of spans must not
	// recurse as deep.
	type item struct {
		i     int32
		depth int
	}
	stack := make([]item, 0, len(roots))
	for _, r := range slices.Backward(roots) {
		stack = append(stack, item{r, 0})
	}
	w.rows = make([]wfRow, 0, len(idx))
	visited := make(map[int32]bool, len(idx))
	walk := func() {
		for len(stack) > 0 {
			it := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[it.i] { // a span id used twice must not loop
				continue
			}
			visited[it.i] = true
			s := spans[it.i]
			s.Attrs = maps.Clone(s.Attrs)
			w.rows = append(w.rows, wfRow{span: s, depth: it.depth})
			for _, c := range slices.Backward(children[s.SpanID]) {
				stack = append(stack, item{c, it.depth + 1})
			}
		}
	}
	walk()
	// Spans whose parents form a cycle are reachable from no root; they
	// are still drawn, each cycle from its earliest span.
	for _, i := range idx {
		if !visited[i] {
			stack = append(stack, item{i, 0})
			walk()
		}
	}
	return w
}

// Len is the number of spans drawn.
func (w *Waterfall) Len() int { return len(w.rows) }

// Move moves the selected span.
func (w *Waterfall) Move(n int) { w.cur.move(n, len(w.rows)) }

// View renders the waterfall: a summary line, the time axis, the spans and
// the selected span's details.
func (w *Waterfall) View(st theme.Styles, width, height int) string {
	summary := fmt.Sprintf("trace %s · %s · %s", w.TraceID, Dur(w.dur), plural(w.total, "span"))
	if w.errors > 0 {
		summary += " · " + st.Bad.Render(plural(w.errors, "error"))
	}
	summary += " · " + strings.Join(w.services, ", ")
	lines := []string{st.Header.Render(summary)}
	if w.total > len(w.rows) {
		lines = append(lines, st.Warn.Render(fmt.Sprintf("showing the first %d of %d spans", len(w.rows), w.total)))
	}
	if len(w.rows) == 0 {
		lines = append(lines, "", "  "+st.Dim.Render("the agent has no spans for this trace (it may have been evicted)"))
		return Lines(lines, width, height)
	}
	labelW := clamp(width*2/5, 20, 60)
	durW := 8
	barW := max(width-2-labelW-1-durW-1, 4)
	axis := "0" + strings.Repeat(" ", max(barW-1-len(Dur(w.dur)), 1)) + Dur(w.dur)
	lines = append(lines, st.ColHeader.Render("  "+fit("SPAN", labelW)+" "+fitRight("DURATION", durW)+" "+fit(axis, barW)))

	listH := height - len(lines) - 2
	from, to := w.cur.window(len(w.rows), listH)
	for i := from; i < to; i++ {
		lines = append(lines, w.rowLine(st, i, labelW, durW, barW))
	}
	for len(lines) < height-2 {
		lines = append(lines, "")
	}
	lines = append(lines, st.Dim.Render(strings.Repeat("─", width)), w.detail(w.rows[w.cur.sel].span))
	return Lines(lines, width, height)
}

func (w *Waterfall) rowLine(st theme.Styles, i, labelW, durW, barW int) string {
	r := w.rows[i]
	mark := "  "
	if r.span.Error {
		mark = "! "
	}
	label := fit(strings.Repeat("  ", min(r.depth, maxIndent))+mark+r.span.Service+": "+r.span.Name, labelW)
	gutter := "  "
	if i == w.cur.sel {
		gutter = st.Selected.Render("▶ ")
		label = st.Selected.Render(label)
	} else if r.span.Error {
		label = st.Bad.Render(label)
	}
	off, n := w.scale(r.span, barW)
	bar, bst := "█", st.Bar
	if r.span.Error {
		bar, bst = "▓", st.ErrBar
	}
	return gutter + label + " " + fitRight(Dur(r.span.Duration), durW) + " " +
		strings.Repeat(" ", off) + bst.Render(strings.Repeat(bar, n))
}

// scale maps a span to a bar offset and length within barW cells; every span
// gets at least one cell so that short ones stay visible.
func (w *Waterfall) scale(s state.Span, barW int) (int, int) {
	if w.dur <= 0 {
		return 0, 1
	}
	off := int(int64(barW) * int64(s.Start.Sub(w.start)) / int64(w.dur))
	n := int((int64(barW)*int64(s.Duration) + int64(w.dur)/2) / int64(w.dur))
	off = clamp(off, 0, barW-1)
	n = clamp(n, 1, barW-off)
	return off, n
}

func (w *Waterfall) detail(s state.Span) string {
	parts := []string{s.Service + ": " + s.Name}
	if s.Kind != "" {
		parts = append(parts, s.Kind)
	}
	parts = append(parts, "+"+Dur(s.Start.Sub(w.start)), Dur(s.Duration))
	if s.Error {
		parts = append(parts, "error")
	}
	keys := slices.Sorted(maps.Keys(s.Attrs))
	for _, k := range keys {
		parts = append(parts, k+"="+s.Attrs[k])
	}
	return "  " + strings.Join(parts, " · ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
