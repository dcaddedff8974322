package panels

import (
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// Registry lists the live registry instances per service. A service that
// should be registered but has no instance gets a row of its own, because a
// vanished lease is exactly what one looks for here.
type Registry struct {
	list[regRow]
	now time.Time
}

type regRow struct {
	service string
	first   bool // first row of its service
	inst    *state.Instance
}

var _ Panel = (*Registry)(nil)

var registryCols = []column{
	{title: "SERVICE", min: 13},
	{title: "INSTANCE", min: 12, flex: 2},
	{title: "ADDRESS", min: 15, flex: 1},
	{title: "UP", min: 6, right: true},
}

// Title implements Panel.
func (p *Registry) Title() string { return "Registry" }

// SetSnapshot implements Panel.
func (p *Registry) SetSnapshot(s state.Snapshot, now time.Time) {
	p.now = now
	names := make([]string, 0, len(s.Registry))
	for name := range s.Registry {
		names = append(names, name)
	}
	for _, c := range s.Components {
		if c.Kind == state.KindService && !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	p.all = p.all[:0]
	for _, name := range names {
		insts := slices.Clone(s.Registry[name])
		slices.SortFunc(insts, func(a, b state.Instance) int { return strings.Compare(a.ID, b.ID) })
		if len(insts) == 0 {
			p.all = append(p.all, regRow{service: name, first: true})
			continue
		}
		for i := range insts {
			p.all = append(p.all, regRow{service: name, first: i == 0, inst: &insts[i]})
		}
	}
	p.set(p.all, regRow.fields)
}

// fields are what the filter looks at: the service, and the instance's id
// and address.
func (r regRow) fields() []string {
	if r.inst == nil {
		return []string{r.service}
	}
	return []string{r.service, r.inst.ID, r.inst.Addr}
}

// Selected is the service of the selected row.
func (p *Registry) Selected() (string, bool) {
	r, ok := p.selected()
	return r.service, ok
}

// View implements Panel.
func (p *Registry) View(st theme.Styles, width, height int) string {
	if len(p.rows) == 0 {
		return Lines(empty(st, "no services registered"+filterNote(p.filter)), width, height)
	}
	lines := table(st, registryCols, width, height, len(p.rows), &p.cur, func(i int) []cell {
		r := p.rows[i]
		name := ""
		if r.first || i == p.cur.top {
			name = r.service
		}
		if r.inst == nil {
			return []cell{plain(name), styled("no live instance", st.Bad), plain("-"), plain("-")}
		}
		up := "-"
		if !r.inst.StartedAt.IsZero() {
			up = Age(p.now.Sub(r.inst.StartedAt))
		}
		return []cell{plain(name), plain(r.inst.ID), plain(r.inst.Addr), plain(up)}
	})
	return Lines(lines, width, height)
}
