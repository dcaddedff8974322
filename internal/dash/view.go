package dash

import (
	"fmt"
	"slices"
	"strings"

	"github.com/msctl/msctl/internal/dash/panels"
	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// View implements tea.Model: header, tabs, the active panel, a status line
// and the key hints, exactly m.height lines of m.width cells.
func (m *Model) View() string {
	st := theme.Default
	if m.err != nil {
		st = st.Stale()
	}
	var b strings.Builder
	b.WriteString(panels.Line(m.header(), m.width))
	b.WriteByte('\n')
	b.WriteString(panels.Line(m.tabs(), m.width))
	b.WriteByte('\n')
	b.WriteString(m.body(st))
	b.WriteByte('\n')
	b.WriteString(panels.Line(m.statusLine(), m.width))
	b.WriteByte('\n')
	b.WriteString(panels.Line(m.help.ShortHelpView(m.keys.ShortHelp()), m.width))
	return b.String()
}

func (m *Model) bodyHeight() int { return m.height - 4 }

func (m *Model) header() string {
	st := theme.Default
	title := st.Header.Render("msctl dash")
	if !m.have {
		return title
	}
	s := m.snap
	parts := []string{title, s.Workspace + " (" + s.Runtime + ")"}
	if m.err != nil {
		parts = append(parts, st.Bad.Render("✗ STALE since "+m.staleSince.Format("15:04:05")), "reconnecting…")
		return strings.Join(parts, " · ")
	}
	healthy, services := 0, 0
	for _, c := range s.Components {
		if c.Kind != state.KindService {
			continue
		}
		services++
		if c.State == state.StateHealthy {
			healthy++
		}
	}
	hs := st.OK
	if healthy < services {
		hs = st.Warn
	}
	parts = append(parts,
		hs.Render(fmt.Sprintf("%d/%d healthy", healthy, services)),
		"up "+panels.Age(m.now.Sub(s.StartedAt)),
		m.now.Format("15:04:05"),
		fmt.Sprintf("agent pid %d", s.AgentPID))
	// Watching goes right after the health count, so that a narrow
	// terminal still shows it.
	if w := watchHeader(s.Watch); w != "" {
		parts = slices.Insert(parts, 3, w)
	}
	return strings.Join(parts, " · ")
}

func (m *Model) tabs() string {
	st := theme.Default
	var b strings.Builder
	for i, p := range m.panels {
		label := fmt.Sprintf("%d %s", i+1, p.Title())
		if n := m.badge(i); n != "" {
			label += " " + n
		}
		switch {
		case i == m.active:
			b.WriteString(st.ActiveTab.Render("[" + label + "]"))
		case i == 0: // the screen's edge is margin enough: seven tabs fit 80 columns
			b.WriteString(st.Tab.Render(label + " "))
		case i == len(m.panels)-1:
			b.WriteString(st.Tab.Render(" " + label))
		default:
			b.WriteString(st.Tab.Render(" " + label + " "))
		}
	}
	return b.String()
}

// badge flags what needs attention: components down, breakers open,
// messages parked in the DLQ (not failing metrics: they are fetched only
// while shown). Narrow terminals get the short form so that all seven tabs
// fit in 80 columns.
func (m *Model) badge(panel int) string {
	var n uint64 // DLQDepth's type
	var what string
	switch panel {
	case panelServices:
		for _, c := range m.snap.Components {
			if c.State == state.StateUnhealthy || c.State == state.StateCrashed {
				n++
			}
		}
		what = "down"
	case panelBreakers:
		for _, br := range m.snap.Breakers {
			if br.State == "open" {
				n++
			}
		}
		what = "open"
	case panelEvents:
		n, what = m.snap.DLQDepth, "parked"
	}
	switch {
	case n > 0 && m.width >= 100:
		return fmt.Sprintf("(%d %s)", n, what)
	case n > 0:
		return fmt.Sprintf("!%d", n)
	}
	return ""
}

func (m *Model) body(st theme.Styles) string {
	w, h := m.width, m.bodyHeight()
	switch {
	case m.showHelp:
		return panels.Lines(m.helpLines(), w, h)
	case !m.have:
		return panels.Lines(m.waiting(), w, h)
	case m.active == panelTraces && m.waterfall != nil:
		return m.waterfall.View(st, w, h)
	}
	return m.panels[m.active].View(st, w, h)
}

// waiting is the body before the first snapshot: connecting, or no
// workspace and how to start one.
func (m *Model) waiting() []string {
	st := theme.Default
	switch {
	case m.err == nil:
		return []string{"", "  connecting to the workspace agent…"}
	case noWorkspace(m.err):
		ws := m.opts.Workspace
		if ws == "" {
			ws = "this directory"
		}
		return []string{
			"",
			"  " + st.Header.Render("No workspace is up") + " in " + ws + ".",
			"",
			"  Start it in the background with:",
			"",
			"      msctl up -d",
			"",
			"  The dashboard connects as soon as it is up. q quits.",
		}
	default:
		return []string{
			"",
			"  " + st.Bad.Render("Cannot reach the workspace agent: "+m.err.Error()),
			"",
			"  Retrying every " + m.opts.Interval.String() + ". `msctl ps` shows what is running; q quits.",
		}
	}
}

func (m *Model) statusLine() string {
	st := theme.Default
	if m.showHelp {
		return st.Status.Render("? or esc closes the help")
	}
	if m.filtering {
		return "/" + m.filters[m.active] + "█" + st.Status.Render("  enter keeps · esc clears")
	}
	if m.status != "" {
		if m.bad {
			return st.Bad.Render(m.status)
		}
		return st.Status.Render(m.status)
	}
	if !m.have {
		return ""
	}
	if m.err != nil {
		return st.Bad.Render(fmt.Sprintf("agent unreachable (%v); showing the snapshot of %s", m.err, m.snap.TakenAt.Format("15:04:05")))
	}
	if be := buildError(m.snap.Watch); be != "" {
		return st.Bad.Render(be)
	}
	var hints []string
	if q := m.filters[m.active]; q != "" {
		hints = append(hints, fmt.Sprintf("filter %q (esc clears)", q))
	}
	switch m.active {
	case panelBreakers:
		hints = append(hints, "enter: logs", "r: restart", "x: edge down 30s", "X: clear faults")
	case panelServices, panelRegistry, panelMetrics:
		hints = append(hints, "enter: logs of the service", "r: restart it", "w: watch sources")
	case panelTraces:
		if m.waterfall != nil {
			hints = append(hints, "esc: back to the trace list")
		} else {
			hints = append(hints, "enter: waterfall of the trace")
		}
	case panelLogs:
		hints = append(hints, "f: follow", "l: level", "s: service", "esc: all services")
	case panelEvents:
		hints = append(hints, "enter: flow of the subject only")
	}
	return st.Status.Render(strings.Join(hints, " · "))
}

func (m *Model) helpLines() []string {
	st := theme.Default
	lines := []string{st.Header.Render("Keys"), ""}
	for _, l := range strings.Split(m.help.FullHelpView(m.keys.FullHelp()), "\n") {
		lines = append(lines, "  "+l)
	}
	return append(lines, "",
		st.Header.Render("Panels"),
		"  1 services   every component: state, health, instances, restarts, endpoint, uptime",
		"  2 registry   live registry instances per service",
		"  3 traces     recent traces; enter shows the waterfall, ! marks spans with errors",
		"  4 breakers   circuit breakers per upstream, FAILS consecutive/total; chaos faults",
		"  5 logs       merged logs; f follow, l minimum level, s one service at a time",
		"  6 events     broker subjects and the flow of recent messages",
		"  7 metrics    per route, called service and consumer: rps, error %, p50/p99 and their sparklines, lag",
		"",
		"  w turns watching on or off (msctl up --watch): a change rebuilds and replaces the services",
		"  it affects; the header says watching, and a failed build shows its error below.",
		"",
		"  ? or esc closes this help.")
}
