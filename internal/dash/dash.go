// Package dash is msctl's terminal dashboard. The model is a pure function of
// the messages it receives: agent snapshots, traces, log lines, restart
// results, keys and window sizes. All I/O happens in tea.Cmds.
package dash

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/msctl/msctl/internal/dash/panels"
	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// Options configure the dashboard; zero values pick the defaults.
type Options struct {
	// Workspace is the directory shown when no workspace is up.
	Workspace string
	// Interval is the snapshot poll period (default 500ms: 2 Hz).
	Interval time.Duration
	// Now is the clock stamped on snapshots; uptimes and breaker countdowns
	// are computed against it (default time.Now).
	Now func() time.Time
	// LogLines and Events are the ring buffer capacities (defaults 5000, 2000).
	LogLines int
	Events   int
	// LogBackfill is how much log history the first stream asks for (default 5m).
	LogBackfill time.Duration
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LogLines <= 0 {
		o.LogLines = 5000
	}
	if o.Events <= 0 {
		o.Events = 2000
	}
	if o.LogBackfill <= 0 {
		o.LogBackfill = 5 * time.Minute
	}
	return o
}

// Panel indexes, in tab order.
const (
	panelServices = iota
	panelRegistry
	panelTraces
	panelBreakers
	panelLogs
	panelEvents
	panelMetrics
	numPanels
)

// Model is the dashboard's bubbletea model.
type Model struct {
	src  Source
	opts Options
	keys theme.KeyMap

	width, height int
	active        int
	panels        [numPanels]panels.Panel
	services      *panels.Services
	registry      *panels.Registry
	traces        *panels.Traces
	breakers      *panels.Breakers
	logs          *panels.Logs
	events        *panels.Events
	metrics       *panels.Metrics

	waterfall    *panels.Waterfall // non-nil while a trace is open
	loadingTrace string

	snap       state.Snapshot
	have       bool      // a snapshot arrived at least once
	now        time.Time // when the last snapshot (or failure) was seen
	err        error     // why the last poll failed; nil while connected
	staleSince time.Time

	// filtering is true while "/" edits the active panel's filter, which
	// applies as it is typed.
	filtering bool
	filters   [numPanels]string

	showHelp bool
	help     help.Model
	status   string
	bad      bool // status is an error

	feed        *logFeed
	logsOpening bool
	logsUntil   time.Time // newest log line time seen, to drop repeats on resume
}

var _ tea.Model = (*Model)(nil)

// New returns a dashboard reading from src.
func New(src Source, opts Options) *Model {
	opts = opts.withDefaults()
	m := &Model{
		src: src, opts: opts, keys: theme.Keys,
		width: 80, height: 24,
		services: &panels.Services{},
		registry: &panels.Registry{},
		traces:   &panels.Traces{},
		breakers: &panels.Breakers{},
		logs:     panels.NewLogs(opts.LogLines),
		events:   panels.NewEvents(opts.Events),
		metrics:  &panels.Metrics{},
		help:     help.New(),
	}
	m.panels = [numPanels]panels.Panel{m.services, m.registry, m.traces, m.breakers, m.logs, m.events, m.metrics}
	return m
}

// Init implements tea.Model: the first poll.
func (m *Model) Init() tea.Cmd {
	return fetchSnapshot(m.src, m.opts.Now)
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 20), max(msg.Height, 8)
		m.help.Width = m.width
		return m, nil
	case tea.KeyMsg:
		shown := m.active
		cmd := m.key(msg)
		if m.active == panelMetrics && shown != panelMetrics && !m.showHelp {
			// Shown now rather than at the next poll.
			cmd = tea.Batch(cmd, fetchMetrics(m.src))
		}
		return m, cmd
	case pollMsg:
		return m, fetchSnapshot(m.src, m.opts.Now)
	case snapshotMsg:
		return m, m.snapshot(msg)
	case traceMsg:
		if msg.id != m.loadingTrace {
			return m, nil // superseded, or the waterfall was closed meanwhile
		}
		m.loadingTrace = ""
		if msg.err != nil {
			m.setStatus(fmt.Sprintf("trace %s: %v", short(msg.id), msg.err), true)
			return m, nil
		}
		m.waterfall = panels.NewWaterfall(msg.id, msg.spans)
		m.setStatus("", false)
		return m, nil
	case metricsMsg:
		if msg.err != nil {
			m.setStatus("metrics: "+msg.err.Error(), true)
		} else {
			m.metrics.SetMetrics(msg.metrics)
		}
		return m, nil
	case restartMsg:
		if msg.err != nil {
			m.setStatus(fmt.Sprintf("restart %s: %v", msg.service, msg.err), true)
		} else {
			m.setStatus(msg.service+" restarted", false)
		}
		return m, nil
	case faultMsg:
		m.faultDone(msg)
		return m, nil
	case watchMsg:
		m.watchDone(msg)
		return m, nil
	case logsOpenedMsg:
		m.logsOpening = false
		m.feed = msg.feed
		return m, m.feed.wait()
	case logsMsg:
		if msg.feed != m.feed {
			return m, nil
		}
		if msg.closed {
			m.feed.cancel()
			m.feed = nil // reopened on the next successful snapshot
			return m, nil
		}
		m.appendLogs(msg)
		return m, m.feed.wait()
	}
	return m, nil
}

func (m *Model) snapshot(msg snapshotMsg) tea.Cmd {
	m.now = msg.at
	next := poll(m.opts.Interval)
	if msg.err != nil {
		if m.err == nil {
			m.staleSince = msg.at
		}
		m.err = msg.err
		return next
	}
	m.err = nil
	m.snap, m.have = msg.snap, true
	for _, p := range m.panels {
		p.SetSnapshot(msg.snap, msg.at)
	}
	// Metrics are computed for the asking: only while they are shown.
	if m.active == panelMetrics {
		next = tea.Batch(next, fetchMetrics(m.src))
	}
	if m.feed != nil || m.logsOpening {
		return next
	}
	m.logsOpening = true
	since, resumed := m.opts.LogBackfill, false
	if !m.logsUntil.IsZero() {
		since, resumed = max(msg.at.Sub(m.logsUntil), time.Second), true
	}
	return tea.Batch(next, openLogs(m.src, since, resumed))
}

func (m *Model) appendLogs(msg logsMsg) {
	lines := msg.lines
	if msg.feed.resumed {
		kept := lines[:0]
		for _, l := range lines {
			if !l.Time.Before(m.logsUntil) {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	for _, l := range lines {
		if l.Time.After(m.logsUntil) {
			m.logsUntil = l.Time
		}
	}
	m.logs.Append(lines)
}

func (m *Model) key(msg tea.KeyMsg) tea.Cmd {
	if msg.Type == tea.KeyCtrlC {
		return m.quit()
	}
	if m.filtering {
		return m.filterKey(msg)
	}
	k := m.keys
	if m.showHelp {
		switch {
		case key.Matches(msg, k.Quit):
			return m.quit()
		case key.Matches(msg, k.Help, k.Back):
			m.showHelp = false
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.showHelp = true
	case key.Matches(msg, k.NextPanel):
		m.active = (m.active + 1) % numPanels
	case key.Matches(msg, k.PrevPanel):
		m.active = (m.active + numPanels - 1) % numPanels
	case key.Matches(msg, k.Up):
		m.move(-1)
	case key.Matches(msg, k.Down):
		m.move(1)
	case key.Matches(msg, k.PageUp):
		m.move(-m.page())
	case key.Matches(msg, k.PageDown):
		m.move(m.page())
	case key.Matches(msg, k.Top):
		m.move(-1 << 30)
	case key.Matches(msg, k.Bottom):
		m.move(1 << 30)
	case key.Matches(msg, k.Enter):
		return m.enter()
	case key.Matches(msg, k.Back):
		m.back()
	case key.Matches(msg, k.Filter):
		m.filtering = true
	case key.Matches(msg, k.Watch):
		return m.toggleWatch()
	case key.Matches(msg, k.Restart):
		return m.restart()
	case m.active == panelBreakers && key.Matches(msg, k.Fault):
		return m.breakEdge()
	case m.active == panelBreakers && key.Matches(msg, k.ClearFaults):
		return m.clearFaults()
	case m.active == panelLogs && key.Matches(msg, k.Follow):
		m.logs.ToggleFollow()
	case m.active == panelLogs && key.Matches(msg, k.Level):
		m.logs.CycleLevel()
	case m.active == panelLogs && key.Matches(msg, k.Service):
		m.logs.CycleService()
	default:
		for i, b := range k.Panels {
			if key.Matches(msg, b) {
				m.active = i
			}
		}
	}
	return nil
}

func (m *Model) quit() tea.Cmd {
	if m.feed != nil {
		m.feed.cancel()
		m.feed = nil
	}
	return tea.Quit
}

// filterKey edits the filter: typing appends, backspace deletes, ctrl+u
// clears, enter keeps it, esc drops it.
func (m *Model) filterKey(msg tea.KeyMsg) tea.Cmd {
	q := []rune(m.filters[m.active])
	switch msg.Type {
	case tea.KeyEnter:
		m.filtering = false
		return nil
	case tea.KeyEsc:
		m.filtering = false
		q = nil
	case tea.KeyBackspace:
		if len(q) > 0 {
			q = q[:len(q)-1]
		}
	case tea.KeyCtrlU:
		q = nil
	case tea.KeySpace:
		q = append(q, ' ')
	case tea.KeyRunes:
		q = append(q, msg.Runes...)
	default:
		return nil
	}
	m.setFilter(string(q))
	return nil
}

func (m *Model) setFilter(q string) {
	m.filters[m.active] = q
	m.panels[m.active].SetFilter(q)
}

// page is how far page up/down moves: the body minus the table header.
func (m *Model) page() int { return max(m.bodyHeight()-2, 1) }

func (m *Model) move(n int) {
	if m.active == panelTraces && m.waterfall != nil {
		m.waterfall.Move(n)
		return
	}
	m.panels[m.active].Move(n)
}

// enter drills in: a trace opens its waterfall, a service (or a breaker's
// owner) opens its logs, a subject narrows the event flow.
func (m *Model) enter() tea.Cmd {
	switch m.active {
	case panelTraces:
		if m.waterfall != nil {
			return nil
		}
		t, ok := m.traces.Selected()
		if !ok {
			return nil
		}
		m.loadingTrace = t.TraceID
		m.setStatus("loading trace "+short(t.TraceID)+"…", false)
		return fetchTrace(m.src, t.TraceID)
	case panelServices, panelRegistry, panelBreakers, panelMetrics:
		if svc, ok := m.selectedService(); ok {
			m.logs.SetService(svc)
			m.active = panelLogs
		}
	case panelEvents:
		m.events.ToggleFocus()
	}
	return nil
}

func (m *Model) back() {
	switch {
	case m.active == panelTraces && (m.waterfall != nil || m.loadingTrace != ""):
		m.waterfall, m.loadingTrace = nil, ""
		m.setStatus("", false)
	case m.active == panelLogs && m.logs.Service() != "":
		m.logs.SetService("")
	case m.filters[m.active] != "":
		m.setFilter("")
	}
}

func (m *Model) selectedService() (string, bool) {
	switch m.active {
	case panelServices:
		c, ok := m.services.Selected()
		return c.Name, ok
	case panelRegistry:
		return m.registry.Selected()
	case panelBreakers:
		return m.breakers.Selected()
	case panelMetrics:
		return m.metrics.Selected()
	case panelLogs:
		svc := m.logs.Service()
		return svc, svc != ""
	}
	return "", false
}

func (m *Model) restart() tea.Cmd {
	svc, ok := m.selectedService()
	if !ok {
		m.setStatus("select a service to restart (1: services)", true)
		return nil
	}
	if m.err != nil {
		m.setStatus("cannot restart "+svc+": the agent is unreachable", true)
		return nil
	}
	// Infra components restart too, with their data (msctl restart postgres).
	m.setStatus("restarting "+svc+"…", false)
	return restart(m.src, svc)
}

func (m *Model) setStatus(s string, bad bool) { m.status, m.bad = s, bad }

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func noWorkspace(err error) bool { return errors.Is(err, ErrNoWorkspace) }

// Run shows the dashboard on the terminal until the user quits or ctx ends.
func Run(ctx context.Context, src Source, opts Options) error {
	// The renderer wakes at its frame rate even when nothing changed; data
	// arrives at 2 Hz, so 15 frames a second keeps keys snappy and idle cheap
	// (the default 60 alone costs about 1% of a core).
	p := tea.NewProgram(New(src, opts), tea.WithAltScreen(), tea.WithContext(ctx), tea.WithFPS(15))
	if _, err := p.Run(); err != nil {
		if ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled) {
			return ctx.Err() // interrupted from outside: let the caller map it
		}
		return fmt.Errorf("run dashboard: %w", err)
	}
	return nil
}
