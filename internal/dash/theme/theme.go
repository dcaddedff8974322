// Package theme holds what every dashboard panel shares: the key map and the
// styles. Keeping both in one place keeps the panels consistent and lets the
// help screen list exactly the keys the model reacts to.
package theme

import (
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"

	"github.com/msctl/msctl/internal/state"
)

// KeyMap is every binding the dashboard reacts to.
type KeyMap struct {
	NextPanel key.Binding
	PrevPanel key.Binding
	Panels    [7]key.Binding
	Up        key.Binding
	Down      key.Binding
	PageUp    key.Binding
	PageDown  key.Binding
	Top       key.Binding
	Bottom    key.Binding
	Enter     key.Binding
	Back      key.Binding
	Filter    key.Binding
	Restart   key.Binding
	Follow    key.Binding
	Level     key.Binding
	Service   key.Binding
	// Fault and ClearFaults are msctl chaos from the breakers panel.
	Fault       key.Binding
	ClearFaults key.Binding
	// Watch turns up --watch on or off.
	Watch key.Binding
	Help  key.Binding
	Quit  key.Binding
}

// Keys is the dashboard's key map.
var Keys = KeyMap{
	NextPanel: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next panel")),
	PrevPanel: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous panel")),
	Panels: [7]key.Binding{
		key.NewBinding(key.WithKeys("1"), key.WithHelp("1", "services")),
		key.NewBinding(key.WithKeys("2"), key.WithHelp("2", "registry")),
		key.NewBinding(key.WithKeys("3"), key.WithHelp("3", "traces")),
		key.NewBinding(key.WithKeys("4"), key.WithHelp("4", "breakers")),
		key.NewBinding(key.WithKeys("5"), key.WithHelp("5", "logs")),
		key.NewBinding(key.WithKeys("6"), key.WithHelp("6", "events")),
		key.NewBinding(key.WithKeys("7"), key.WithHelp("7", "metrics")),
	},
	Up:          key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
	Down:        key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
	PageUp:      key.NewBinding(key.WithKeys("pgup", "ctrl+u"), key.WithHelp("pgup", "page up")),
	PageDown:    key.NewBinding(key.WithKeys("pgdown", "ctrl+d"), key.WithHelp("pgdn", "page down")),
	Top:         key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "first")),
	Bottom:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "last")),
	Enter:       key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
	Back:        key.NewBinding(key.WithKeys("esc", "backspace"), key.WithHelp("esc", "back")),
	Filter:      key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
	Restart:     key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "restart service")),
	Follow:      key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "follow logs")),
	Level:       key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "log level")),
	Service:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "log service")),
	Fault:       key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "edge down 30s")),
	ClearFaults: key.NewBinding(key.WithKeys("X"), key.WithHelp("X", "clear faults")),
	Watch:       key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "watch on/off")),
	Help:        key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
	Quit:        key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
}

// ShortHelp is the footer line.
func (k KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.NextPanel, k.Up, k.Down, k.Enter, k.Filter, k.Restart, k.Help, k.Quit}
}

// FullHelp is the help screen, one column per group.
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.NextPanel, k.PrevPanel, k.Panels[0], k.Panels[1], k.Panels[2], k.Panels[3], k.Panels[4], k.Panels[5], k.Panels[6]},
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Enter, k.Back},
		{k.Filter, k.Restart, k.Follow, k.Level, k.Service, k.Fault, k.ClearFaults, k.Watch, k.Help, k.Quit},
	}
}

// Styles are the dashboard's lipgloss styles. Everything that must be
// readable without colour (selection, errors, staleness) is also marked in
// the text itself; colour only reinforces it.
type Styles struct {
	Header    lipgloss.Style
	Tab       lipgloss.Style
	ActiveTab lipgloss.Style
	ColHeader lipgloss.Style
	Selected  lipgloss.Style
	Dim       lipgloss.Style
	OK        lipgloss.Style
	Warn      lipgloss.Style
	Bad       lipgloss.Style
	Bar       lipgloss.Style
	ErrBar    lipgloss.Style
	Status    lipgloss.Style
	Help      lipgloss.Style
}

// Default are the styles the dashboard uses.
var Default = Styles{
	Header:    lipgloss.NewStyle().Bold(true),
	Tab:       lipgloss.NewStyle().Foreground(lipgloss.Color("245")),
	ActiveTab: lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("39")),
	ColHeader: lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("245")),
	Selected:  lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("39")),
	Dim:       lipgloss.NewStyle().Faint(true),
	OK:        lipgloss.NewStyle().Foreground(lipgloss.Color("42")),
	Warn:      lipgloss.NewStyle().Foreground(lipgloss.Color("214")),
	Bad:       lipgloss.NewStyle().Foreground(lipgloss.Color("203")),
	Bar:       lipgloss.NewStyle().Foreground(lipgloss.Color("39")),
	ErrBar:    lipgloss.NewStyle().Foreground(lipgloss.Color("203")),
	Status:    lipgloss.NewStyle().Foreground(lipgloss.Color("245")),
	Help:      lipgloss.NewStyle().Foreground(lipgloss.Color("245")),
}

// ForState is the style of a component state.
func (s Styles) ForState(st state.State) lipgloss.Style {
	switch st {
	case state.StateHealthy:
		return s.OK
	case state.StateUnhealthy, state.StateCrashed:
		return s.Bad
	case state.StateStopped:
		return s.Dim
	default:
		return s.Warn
	}
}

// ForBreaker is the style of a breaker state.
func (s Styles) ForBreaker(st string) lipgloss.Style {
	switch st {
	case "closed":
		return s.OK
	case "open":
		return s.Bad
	default:
		return s.Warn
	}
}

// Stale are the styles for a snapshot that is no longer current: everything
// faint and colourless, so live colours cannot be mistaken for live state.
func (s Styles) Stale() Styles {
	f := lipgloss.NewStyle().Faint(true)
	return Styles{
		Header: s.Header, Tab: s.Tab, ActiveTab: s.ActiveTab, Status: s.Status, Help: s.Help,
		ColHeader: f, Selected: f.Bold(true), Dim: f, OK: f, Warn: f, Bad: f, Bar: f, ErrBar: f,
	}
}
