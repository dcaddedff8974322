package dash

import (
	"reflect"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/msctl/msctl/internal/state"
)

// harness drives a Model by hand, the way the bubbletea runtime would, but
// without running the commands it returns (tests run them explicitly).
type harness struct {
	t testing.TB
	m *Model
}

// newHarness is for tests that never run the model's commands: it keeps
// the default poll interval, which the error screen shows.
func newHarness(t testing.TB, w, h int) *harness {
	t.Helper()
	hs := newHarnessWith(t, &fakeSource{}, w, h)
	hs.m.opts.Interval = Options{}.withDefaults().Interval
	return hs
}

// newHarnessWith reads from src; the poll interval is tiny so that running a
// poll command in a test does not wait.
func newHarnessWith(t testing.TB, src Source, w, h int) *harness {
	t.Helper()
	m := New(src, Options{Workspace: "/home/dev/shop", Now: fixedNow, Interval: time.Millisecond})
	hs := &harness{t: t, m: m}
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	return hs
}

// send delivers msg and returns the command the model asked for.
func (h *harness) send(msg tea.Msg) tea.Cmd {
	h.t.Helper()
	next, cmd := h.m.Update(msg)
	if next != h.m {
		h.t.Fatalf("Update returned a different model")
	}
	return cmd
}

// keys delivers each key in turn: names like "enter", "tab", "up" or a single rune.
func (h *harness) keys(names ...string) {
	h.t.Helper()
	for _, n := range names {
		h.send(keyMsg(n))
	}
}

func (h *harness) snapshot(s state.Snapshot) tea.Cmd {
	h.t.Helper()
	return h.send(snapshotMsg{snap: s, at: now})
}

func keyMsg(name string) tea.KeyMsg {
	named := map[string]tea.KeyType{
		"enter": tea.KeyEnter, "tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab, "esc": tea.KeyEsc,
		"up": tea.KeyUp, "down": tea.KeyDown, "pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown,
		"home": tea.KeyHome, "end": tea.KeyEnd, "backspace": tea.KeyBackspace, "ctrl+c": tea.KeyCtrlC,
		"space": tea.KeySpace, "ctrl+u": tea.KeyCtrlU,
	}
	if t, ok := named[name]; ok {
		return tea.KeyMsg{Type: t}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(name)}
}

// logLines delivers lines as the log feed would, opening one first if needed.
func (h *harness) logLines(lines []state.LogLine) {
	h.t.Helper()
	if h.m.feed == nil {
		h.send(logsOpenedMsg{feed: &logFeed{lines: make(chan state.LogLine), cancel: func() {}}})
	}
	h.send(logsMsg{feed: h.m.feed, lines: lines})
}

// run executes cmd the way the runtime would, batches included, and returns
// the messages it produced, in order.
func run(t testing.TB, cmd tea.Cmd) []tea.Msg {
	t.Helper()
	if cmd == nil {
		return nil
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("command did not return within 5s")
	}
	if batch, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		for _, c := range batch {
			out = append(out, run(t, c)...)
		}
		return out
	}
	if msg == nil {
		return nil
	}
	return []tea.Msg{msg}
}

// kinds names the types of msgs, for comparing what commands produced.
func kinds(msgs []tea.Msg) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, reflect.TypeOf(m).String())
	}
	return out
}

func lineWidth(s string) int { return lipgloss.Width(s) }
