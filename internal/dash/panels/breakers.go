package panels

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// Breakers lists every circuit breaker of every service, one per upstream.
type Breakers struct {
	list[state.Breaker]
	now time.Time
}

var _ Panel = (*Breakers)(nil)

var breakerCols = []column{
	{title: "SERVICE", min: 13},
	{title: "UPSTREAM", min: 13, flex: 1},
	{title: "STATE", min: 9},
	{title: "FAILS", min: 9, right: true},
	{title: "REQS", min: 6, right: true},
	{title: "HALF-OPEN IN", min: 12, right: true},
}

// Title implements Panel.
func (p *Breakers) Title() string { return "Breakers" }

// SetSnapshot implements Panel.
func (p *Breakers) SetSnapshot(s state.Snapshot, now time.Time) {
	p.now = now
	p.all = slices.Clone(s.Breakers)
	slices.SortFunc(p.all, func(a, b state.Breaker) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Name, b.Name))
	})
	p.set(p.all, func(b state.Breaker) []string { return []string{b.Service, b.Name, b.State} })
}

// Selected is the service owning the selected breaker.
func (p *Breakers) Selected() (string, bool) {
	if len(p.rows) == 0 {
		return "", false
	}
	return p.rows[clamp(p.cur.sel, 0, len(p.rows)-1)].Service, true
}

// View implements Panel. FAILS is consecutive/total failures.
func (p *Breakers) View(st theme.Styles, width, height int) string {
	if len(p.rows) == 0 {
		return Lines(empty(st, "no circuit breakers reported yet"+filterNote(p.filter)), width, height)
	}
	lines := table(st, breakerCols, width, height, len(p.rows), &p.cur, func(i int) []cell {
		b := p.rows[i]
		return []cell{
			plain(b.Service),
			plain(b.Name),
			styled(b.State, st.ForBreaker(b.State)),
			plain(fmt.Sprintf("%d/%d", b.ConsecutiveFailures, b.TotalFailures)),
			plain(strconv.FormatUint(uint64(b.Requests), 10)),
			plain(halfOpenIn(b, p.now)),
		}
	})
	return Lines(lines, width, height)
}

func halfOpenIn(b state.Breaker, now time.Time) string {
	if b.State != "open" || b.OpenUntil.IsZero() {
		return "-"
	}
	d := b.OpenUntil.Sub(now)
	if d <= 0 {
		return "now"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
