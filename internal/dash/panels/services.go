package panels

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// Services lists every component: infra and services, in the agent's order.
type Services struct {
	list[state.Component]
	now time.Time
}

var _ Panel = (*Services)(nil)

var serviceCols = []column{
	{title: "NAME", min: 13},
	{title: "KIND", min: 7},
	{title: "STATE", min: 9},
	{title: "HEALTH", min: 4, flex: 1},
	{title: "INST", min: 4, right: true},
	{title: "RST", min: 3, right: true},
	{title: "ENDPOINT", min: 15, max: 32, flex: 4},
	{title: "UPTIME", min: 6, right: true},
}

// Title implements Panel.
func (p *Services) Title() string { return "Services" }

// SetSnapshot implements Panel.
func (p *Services) SetSnapshot(s state.Snapshot, now time.Time) {
	p.now = now
	p.set(s.Components, func(c state.Component) []string { return []string{c.Name, c.Kind, string(c.State)} })
}

// Selected is the selected component.
func (p *Services) Selected() (state.Component, bool) {
	return p.selected()
}

// View implements Panel. The last two lines describe the selected component
// in full, since its health error rarely fits the table.
func (p *Services) View(st theme.Styles, width, height int) string {
	if len(p.rows) == 0 {
		return Lines(empty(st, "no components"+filterNote(p.filter)), width, height)
	}
	lines := table(st, serviceCols, width, height-2, len(p.rows), &p.cur, func(i int) []cell {
		c := p.rows[i]
		health := c.Health
		hst := st.OK
		if health != "ok" {
			hst = st.Bad
		}
		if health == "" {
			health, hst = "-", st.Dim
		}
		return []cell{
			plain(c.Name),
			plain(c.Kind),
			styled(string(c.State), st.ForState(c.State)),
			styled(health, hst),
			plain(strconv.Itoa(c.Instances)),
			plain(strconv.Itoa(c.Restarts)),
			plain(orDash(c.Endpoint)),
			plain(uptime(c, p.now)),
		}
	})
	for len(lines) < height-2 {
		lines = append(lines, "")
	}
	if c, ok := p.Selected(); ok {
		lines = append(lines, st.Dim.Render(strings.Repeat("─", width)), detail(c))
	}
	return Lines(lines, width, height)
}

func detail(c state.Component) string {
	parts := []string{c.Name}
	if c.PID != 0 {
		parts = append(parts, fmt.Sprintf("pid %d", c.PID))
	}
	if c.Container != "" {
		parts = append(parts, "container "+c.Container)
	}
	if c.Endpoint != "" {
		parts = append(parts, c.Endpoint)
	}
	if c.Health != "" {
		parts = append(parts, "health: "+c.Health)
	}
	return "  " + strings.Join(parts, " · ")
}

func uptime(c state.Component, now time.Time) string {
	if c.StartedAt.IsZero() || c.State == state.StateStopped || c.State == state.StateCrashed {
		return "-"
	}
	return Age(now.Sub(c.StartedAt))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func filterNote(q string) string {
	if q == "" {
		return ""
	}
	return fmt.Sprintf(" matching %q", q)
}
