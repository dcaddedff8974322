package panels

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// Metrics shows the services' RED figures per route, per called service
// (edge) and per consumer, with sparklines of the rate and the p99 and the
// consumers' lag. Its data arrives apart from the snapshot (SetMetrics):
// the dashboard fetches it only while the panel is shown.
type Metrics struct {
	list[state.MetricRow]
	m    state.Metrics
	have bool // metrics arrived at least once
}

var _ Panel = (*Metrics)(nil)

// metricCols are the table's columns but the sparklines, which go before LAG
// when they fit.
var metricCols = []column{
	{title: "SERVICE", min: 8},
	{title: "KIND", min: 5},
	{title: "NAME", min: 10, flex: 1},
	{title: "RPS", min: 4, right: true},
	{title: "ERR%", min: 4, right: true},
	{title: "P50", min: 6, right: true},
	{title: "P99", min: 6, right: true},
	{title: "LAG", min: 3, right: true},
}

// Sparkline widths in the table: the newest steps, one cell each, as many
// as the screen leaves room for within these bounds.
const (
	minSpark = 8
	maxSpark = 30
)

// Title implements Panel.
func (p *Metrics) Title() string { return "Metrics" }

// SetSnapshot implements Panel; metrics come through SetMetrics.
func (p *Metrics) SetSnapshot(state.Snapshot, time.Time) {}

// SetMetrics replaces the rows.
func (p *Metrics) SetMetrics(m state.Metrics) {
	p.m, p.have = m, true
	p.set(m.Rows, func(r state.MetricRow) []string { return []string{r.Service, string(r.Kind), r.Label()} })
}

// Selected is the service of the selected row.
func (p *Metrics) Selected() (string, bool) {
	r, ok := p.selected()
	return r.Service, ok
}

// View implements Panel. Below the table the selected row's series are
// drawn over the whole width, with the lag of a consumer.
func (p *Metrics) View(st theme.Styles, width, height int) string {
	if !p.have {
		return Lines(empty(st, "loading metrics…"), width, height)
	}
	if len(p.rows) == 0 {
		return Lines(empty(st, "no metrics"+filterNote(p.filter)+": services export them every 2 s once they serve requests, call others or consume messages"), width, height)
	}
	// The sparklines get what the other columns leave, names whole first;
	// on a narrow screen only the selected row's, below the table.
	spark := min((width-p.textWidth()-45)/2, maxSpark)
	cols := metricCols
	if spark >= minSpark {
		cols = slices.Insert(slices.Clone(cols), len(cols)-1,
			column{title: "RPS " + p.span(spark), min: spark}, column{title: "P99 " + p.span(spark), min: spark})
	}
	detail := p.detail(st, width)
	lines := table(st, cols, width, height-len(detail), len(p.rows), &p.cur, func(i int) []cell {
		r := p.rows[i]
		rps, errPct, p50, p99 := plain("-"), plain("-"), plain("-"), plain("-")
		if r.Requests > 0 {
			rps = plain(strconv.FormatFloat(r.RPS, 'f', 1, 64))
			errPct = styled(strconv.FormatFloat(r.ErrorPct, 'f', 1, 64), errStyle(st, r.ErrorPct))
			p50, p99 = plain(DurMS(r.P50MS)), plain(DurMS(r.P99MS))
		}
		lag := "-"
		if r.Lag != nil {
			lag = strconv.FormatInt(*r.Lag, 10)
		}
		cells := []cell{plain(r.Service), plain(string(r.Kind)), plain(r.Label()), rps, errPct, p50, p99}
		if spark >= minSpark {
			cells = append(cells, styled(Sparkline(r.RPSSeries, spark), st.Bar), styled(Sparkline(r.P99Series, spark), st.Bar))
		}
		return append(cells, plain(lag))
	})
	for len(lines) < height-len(detail) {
		lines = append(lines, "")
	}
	return Lines(append(lines, detail...), width, height)
}

// textWidth is how wide the service and name columns need to be.
func (p *Metrics) textWidth() int {
	svc, name := 0, 0
	for _, r := range p.rows {
		svc, name = max(svc, len(r.Service)), max(name, len(r.Label()))
	}
	return svc + name
}

// span says how long n steps last, e.g. "1m".
func (p *Metrics) span(n int) string {
	return Age(time.Duration(n) * time.Duration(p.m.StepMS) * time.Millisecond)
}

// detail draws the selected row's series over the width: rate, p99 and a
// consumer's lag, each with its peak.
func (p *Metrics) detail(st theme.Styles, width int) []string {
	r, ok := p.selected()
	if !ok {
		return nil
	}
	what := fmt.Sprintf("  %s %s %s · since the agent started: %d, %d failed", r.Service, r.Kind, r.Label(), r.Total, r.TotalErrors)
	lines := []string{st.Dim.Render(strings.Repeat("─", width)), what}
	w := max(width-24, minSpark)
	series := func(name string, v []float64, peak string) {
		if len(v) > 0 {
			lines = append(lines, fmt.Sprintf("  %-4s %s  max %s", name, st.Bar.Render(Sparkline(tail(v, w), w)), peak))
		}
	}
	series("rps", r.RPSSeries, strconv.FormatFloat(maxOf(r.RPSSeries), 'f', 1, 64))
	series("p99", r.P99Series, DurMS(maxOf(r.P99Series)))
	if len(r.LagSeries) > 0 {
		lag := make([]float64, len(r.LagSeries))
		for i, v := range r.LagSeries {
			lag[i] = float64(v)
		}
		series("lag", lag, strconv.FormatFloat(maxOf(lag), 'f', 0, 64))
	}
	return lines
}

// sparkBlocks draw a value from the smallest to the peak; nothing measured
// is a blank.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws v, scaled to its peak, as width cells: one per value, the
// newest last, right-aligned when there are fewer values than cells.
func Sparkline(v []float64, width int) string {
	peak := maxOf(v)
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", max(width-len(v), 0)))
	for _, x := range tail(v, width) {
		if x <= 0 || peak <= 0 {
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(sparkBlocks[min(int(x/peak*float64(len(sparkBlocks)-1)+0.5), len(sparkBlocks)-1)])
	}
	return b.String()
}

func tail(v []float64, n int) []float64 { return v[max(len(v)-n, 0):] }

func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

// msDur shows milliseconds as the panels show durations.
func DurMS(ms float64) string { return Dur(time.Duration(ms * float64(time.Millisecond))) }

// errStyle colours an error share: none ok, some a warning, 5% or more bad.
func errStyle(st theme.Styles, pct float64) lipgloss.Style {
	switch {
	case pct >= 5:
		return st.Bad
	case pct > 0:
		return st.Warn
	}
	return st.OK
}
