// Package panels renders the dashboard's panels. Each panel keeps the rows it
// derived from the last snapshot (computed once per snapshot, not per frame)
// and renders only the rows that fit.
package panels

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// Panel is what the dashboard asks of every panel.
type Panel interface {
	Title() string
	// SetSnapshot replaces the panel's data; now is the time the snapshot was received.
	SetSnapshot(s state.Snapshot, now time.Time)
	// SetFilter narrows the rows to those containing q (case-insensitive).
	SetFilter(q string)
	// Move moves the selection by n rows; a large n goes to the first or last row.
	Move(n int)
	// View renders exactly height lines of at most width cells.
	View(st theme.Styles, width, height int) string
}

// cursor is a selection within n rows and the first visible row.
// list is a panel's rows: all it was given and those its filter keeps,
// with the selection among them. Panels embed it for SetFilter and Move.
type list[T any] struct {
	all, rows []T
	filter    string
	fields    func(T) []string // what the filter looks at in an item
	cur       cursor
}

// set replaces the items and filters them again.
func (l *list[T]) set(all []T, fields func(T) []string) {
	l.all, l.fields = all, fields
	l.apply()
}

// SetFilter implements Panel.
func (l *list[T]) SetFilter(q string) {
	l.filter = strings.ToLower(q)
	l.apply()
}

func (l *list[T]) apply() {
	l.rows = l.rows[:0]
	for _, x := range l.all {
		if matches(l.filter, l.fields(x)...) {
			l.rows = append(l.rows, x)
		}
	}
}

// Move implements Panel.
func (l *list[T]) Move(n int) { l.cur.move(n, len(l.rows)) }

// selected is the row under the cursor; false when no row is shown.
func (l *list[T]) selected() (T, bool) {
	if len(l.rows) == 0 {
		var zero T
		return zero, false
	}
	return l.rows[clamp(l.cur.sel, 0, len(l.rows)-1)], true
}

type cursor struct {
	sel, top int
}

func (c *cursor) move(d, n int) {
	c.sel = clamp(c.sel+d, 0, n-1)
}

// window returns the visible range [from, to) for height rows and keeps the
// selection inside it.
func (c *cursor) window(n, height int) (int, int) {
	c.sel = clamp(c.sel, 0, n-1)
	if height < 1 {
		return 0, 0
	}
	if c.sel < c.top {
		c.top = c.sel
	}
	if c.sel >= c.top+height {
		c.top = c.sel - height + 1
	}
	c.top = clamp(c.top, 0, max(0, n-height))
	return c.top, min(n, c.top+height)
}

func clamp(v, lo, hi int) int {
	if hi < lo {
		return lo
	}
	return max(lo, min(v, hi))
}

// fit pads or truncates plain text s to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if sw := ansi.StringWidth(s); sw <= w {
		return s + strings.Repeat(" ", w-sw)
	}
	return ansi.Truncate(s, w, "…")
}

// fitRight is fit aligned to the right.
func fitRight(s string, w int) string {
	if sw := ansi.StringWidth(s); sw < w {
		return strings.Repeat(" ", w-sw) + s
	}
	return fit(s, w)
}

// Line truncates a rendered line to w cells and pads it, so that no line wraps.
func Line(s string, w int) string {
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if sw := ansi.StringWidth(s); sw < w {
		s += strings.Repeat(" ", w-sw)
	}
	return s
}

// Lines joins lines and pads with empty lines up to height, cutting the rest.
func Lines(lines []string, width, height int) string {
	if len(lines) > height {
		lines = lines[:height]
	}
	var b strings.Builder
	for i := range height {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i < len(lines) {
			b.WriteString(Line(lines[i], width))
		} else {
			b.WriteString(strings.Repeat(" ", width))
		}
	}
	return b.String()
}

// column describes one table column. It is as wide as its widest cell (its
// title included), at most max cells when max is set; leftover width goes to
// the flex columns in proportion to flex. When the screen is too narrow,
// columns give width back down to min cells: the free-text ones (flex, no
// max) first, then the other flex ones, then the rest, so names are the last
// to be cut.
type column struct {
	title string
	min   int
	max   int
	flex  int
	right bool
}

// cell is one table cell; style is nil for plain text.
type cell struct {
	text  string
	style *lipgloss.Style
}

func plain(s string) cell { return cell{text: s} }

func styled(s string, st lipgloss.Style) cell { return cell{text: s, style: &st} }

// widths sizes columns to their content (content[i] is the widest cell of
// column i) within width, a one-cell gap between them and a two-cell
// selection gutter in front.
func widths(cols []column, content []int, width int) []int {
	w := make([]int, len(cols))
	used, flex := 2+len(cols)-1, 0
	for i, c := range cols {
		w[i] = max(ansi.StringWidth(c.title), content[i])
		if c.max > 0 {
			w[i] = min(w[i], max(c.max, ansi.StringWidth(c.title)))
		}
		used += w[i]
		flex += c.flex
	}
	if left := width - used; left > 0 {
		grow(cols, w, left, flex)
	} else {
		shrink(cols, w, -left)
	}
	return w
}

// grow shares left cells among the flex columns; what a capped column cannot
// take goes to the last uncapped one (or, without one, the last flex column).
func grow(cols []column, w []int, left, flex int) {
	if flex == 0 {
		return
	}
	given := 0
	last, open := -1, -1
	for i, c := range cols {
		if c.flex == 0 {
			continue
		}
		extra := left * c.flex / flex
		if c.max > 0 && w[i]+extra > c.max {
			extra = max(c.max-w[i], 0)
		}
		w[i] += extra
		given += extra
		last = i
		if c.max == 0 {
			open = i
		}
	}
	if open < 0 {
		open = last
	}
	w[open] += left - given
}

// shrink takes excess cells back, column by column in shrinkOrder, none
// below its min; whatever is still too wide is cut at the end of the line.
func shrink(cols []column, w []int, excess int) {
	for _, i := range shrinkOrder(cols) {
		if excess <= 0 {
			return
		}
		take := min(excess, max(w[i]-cols[i].min, 0))
		w[i] -= take
		excess -= take
	}
}

// shrinkOrder lists the columns that give width first: uncapped flex columns
// (free text) by ascending flex, then capped flex columns, then fixed ones.
func shrinkOrder(cols []column) []int {
	rank := func(c column) int {
		switch {
		case c.flex > 0 && c.max == 0:
			return 0
		case c.flex > 0:
			return 1
		}
		return 2
	}
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if d := rank(cols[a]) - rank(cols[b]); d != 0 {
			return d
		}
		return cols[a].flex - cols[b].flex
	})
	return order
}

func headerLine(st theme.Styles, cols []column, w []int) string {
	var b strings.Builder
	b.WriteString("  ")
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(' ')
		}
		if c.right {
			b.WriteString(fitRight(c.title, w[i]))
		} else {
			b.WriteString(fit(c.title, w[i]))
		}
	}
	return st.ColHeader.Render(b.String())
}

// rowLine renders one table row; the selected row gets a "▶" gutter so it is
// visible without colour.
func rowLine(st theme.Styles, cols []column, w []int, cells []cell, selected bool) string {
	var b strings.Builder
	if selected {
		b.WriteString(st.Selected.Render("▶ "))
	} else {
		b.WriteString("  ")
	}
	for i, c := range cells {
		if i > 0 {
			b.WriteByte(' ')
		}
		var s string
		if cols[i].right {
			s = fitRight(c.text, w[i])
		} else {
			s = fit(c.text, w[i])
		}
		switch {
		case selected:
			s = st.Selected.Render(s)
		case c.style != nil:
			s = c.style.Render(s)
		}
		b.WriteString(s)
	}
	return b.String()
}

// table renders a header and rows[from:to] via cellsOf.
// Columns are measured over all n rows, not just the visible ones, so they
// keep their widths while the selection scrolls.
func table(st theme.Styles, cols []column, width, height int, n int, cur *cursor, cellsOf func(i int) []cell) []string {
	content := make([]int, len(cols))
	for i := range n {
		for j, c := range cellsOf(i) {
			content[j] = max(content[j], ansi.StringWidth(c.text))
		}
	}
	w := widths(cols, content, width)
	lines := []string{headerLine(st, cols, w)}
	from, to := cur.window(n, height-1)
	for i := from; i < to; i++ {
		lines = append(lines, rowLine(st, cols, w, cellsOf(i), i == cur.sel))
	}
	return lines
}

// matches reports whether any of fields contains the lower-cased query q.
func matches(q string, fields ...string) bool {
	if q == "" {
		return true
	}
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

// Age formats a duration the way the panels show uptimes: two units at most.
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// Dur formats a span or trace duration with three significant digits.
func Dur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig3(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + "ms"
	default:
		return sig3(d.Seconds()) + "s"
	}
}

// sig3 prints v with about three significant digits and never in exponent form.
func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// empty is the body of a panel with nothing to show.
func empty(st theme.Styles, msg string) []string {
	return []string{"", "  " + st.Dim.Render(msg)}
}
