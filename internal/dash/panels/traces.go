package panels

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// Traces lists the recent traces the snapshot carries, newest first.
type Traces struct {
	list[state.TraceSummary]
}

var _ Panel = (*Traces)(nil)

var traceCols = []column{
	{title: "TIME", min: 8},
	{title: "ROOT", min: 16, flex: 3},
	{title: "SERVICES", min: 10, flex: 2},
	{title: "DURATION", min: 8, right: true},
	{title: "SPANS", min: 5, right: true},
	{title: "ERR", min: 3, right: true},
}

// Title implements Panel.
func (p *Traces) Title() string { return "Traces" }

// SetSnapshot implements Panel. The selection follows its trace when newer
// traces push it down the list.
func (p *Traces) SetSnapshot(s state.Snapshot, _ time.Time) {
	selected, hadSel := p.Selected()
	all := slices.Clone(s.Traces)
	slices.SortStableFunc(all, func(a, b state.TraceSummary) int { return b.Start.Compare(a.Start) })
	p.set(all, func(t state.TraceSummary) []string { return append([]string{t.Root, t.TraceID}, t.Services...) })
	if hadSel {
		if i := slices.IndexFunc(p.rows, func(t state.TraceSummary) bool { return t.TraceID == selected.TraceID }); i >= 0 {
			p.cur.top += i - p.cur.sel
			p.cur.sel = i
		}
	}
}

// Selected is the selected trace.
func (p *Traces) Selected() (state.TraceSummary, bool) {
	return p.selected()
}

// View implements Panel.
func (p *Traces) View(st theme.Styles, width, height int) string {
	if len(p.rows) == 0 {
		return Lines(empty(st, "no traces yet: send a request through the gateway"+filterNote(p.filter)), width, height)
	}
	lines := table(st, traceCols, width, height, len(p.rows), &p.cur, func(i int) []cell {
		t := p.rows[i]
		errs := styled("0", st.Dim)
		if t.Errors > 0 {
			errs = styled(strconv.Itoa(t.Errors), st.Bad)
		}
		return []cell{
			plain(t.Start.Format("15:04:05")),
			plain(t.Root),
			plain(strings.Join(t.Services, ",")),
			plain(Dur(t.Duration)),
			plain(strconv.Itoa(t.Spans)),
			errs,
		}
	})
	return Lines(lines, width, height)
}
