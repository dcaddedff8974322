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

// Breakers lists every circuit breaker of every service, one per upstream,
// and below them the active `msctl chaos` faults, so that a fault and the
// breaker it trips are seen together.
type Breakers struct {
	list[state.Breaker]
	now    time.Time
	faults []state.Fault
}

var _ Panel = (*Breakers)(nil)

var breakerCols = []column{
	{title: "SERVICE", min: 13},
	{title: "UPSTREAM", min: 13, flex: 1},
	{title: "STATE", min: 9},
	{title: "FAILS", min: 9, right: true},
	{title: "REQS", min: 6, right: true},
	{title: "HALF-OPEN IN", min: 12, right: true},
	{title: "FAULT", min: 6},
}

// Title implements Panel.
func (p *Breakers) Title() string { return "Breakers" }

// SetSnapshot implements Panel.
func (p *Breakers) SetSnapshot(s state.Snapshot, now time.Time) {
	p.now = now
	p.faults = s.Faults
	p.all = slices.Clone(s.Breakers)
	slices.SortFunc(p.all, func(a, b state.Breaker) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Name, b.Name))
	})
	p.set(p.all, func(b state.Breaker) []string { return []string{b.Service, b.Name, b.State} })
}

// Selected is the service owning the selected breaker.
func (p *Breakers) Selected() (string, bool) {
	b, ok := p.SelectedBreaker()
	return b.Service, ok
}

// SelectedBreaker is the selected breaker: its edge is Service->Name.
func (p *Breakers) SelectedBreaker() (state.Breaker, bool) {
	return p.selected()
}

// View implements Panel. FAILS is consecutive/total failures; FAULT the
// faults on the breaker's edge. The fault list takes at most half.
func (p *Breakers) View(st theme.Styles, width, height int) string {
	var below []string
	if len(p.faults) > 0 && height >= 4 {
		below = append(below, "", st.ColHeader.Render("ACTIVE FAULTS (msctl chaos ls; X clears)"))
		for _, f := range p.faults {
			below = append(below, st.Warn.Render(fmt.Sprintf("  %-4s %-24s %s%s", f.ID, f.Edge(), f.Describe(), p.expiresIn(f))))
		}
		below = below[:min(len(below), height/2)]
	}
	top := p.table(st, width, height-len(below))
	for len(top) < height-len(below) {
		top = append(top, "")
	}
	return Lines(append(top, below...), width, height)
}

func (p *Breakers) table(st theme.Styles, width, height int) []string {
	if len(p.rows) == 0 {
		return empty(st, "no circuit breakers reported yet"+filterNote(p.filter))
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
			styled(p.faultOn(b.Service, b.Name), st.Warn),
		}
	})
	return lines
}

// faultOn describes the faults on the edge from->to, "" without any.
func (p *Breakers) faultOn(from, to string) string {
	var out []string
	for _, f := range p.faults {
		if f.From == from && f.To == to {
			out = append(out, f.Describe())
		}
	}
	return strings.Join(out, "; ")
}

func (p *Breakers) expiresIn(f state.Fault) string {
	if f.ExpiresAt == nil {
		return ""
	}
	return fmt.Sprintf(" (%.0fs left)", max(f.ExpiresAt.Sub(p.now), 0).Seconds())
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
