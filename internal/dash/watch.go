package dash

import (
	"context"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// watchMsg is the outcome of w.
type watchMsg struct {
	on  bool
	err error
}

// toggleWatch turns the agent's source watcher (up --watch) on or off,
// whichever it is not as of the last snapshot.
func (m *Model) toggleWatch() tea.Cmd {
	if m.err != nil || !m.have {
		m.setStatus("cannot toggle watching: the agent is unreachable", true)
		return nil
	}
	on := m.snap.Watch == nil || !m.snap.Watch.On
	if on {
		m.setStatus("turning watching on…", false)
	} else {
		m.setStatus("turning watching off…", false)
	}
	src := m.src
	return func() tea.Msg {
		// Turning it on reads the services' imports (go list): more than a
		// snapshot's call.
		ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
		defer cancel()
		_, err := src.SetWatch(ctx, on)
		return watchMsg{on: on, err: err}
	}
}

func (m *Model) watchDone(msg watchMsg) {
	switch {
	case msg.err != nil:
		m.setStatus("watch: "+msg.err.Error(), true)
	case msg.on:
		m.setStatus("watching the sources: a change rebuilds and replaces the services it affects", false)
	default:
		m.setStatus("stopped watching", false)
	}
}

// watchHeader is the header's part about watching, "" when off.
func watchHeader(w *state.WatchStatus) string {
	st := theme.Default
	switch {
	case w == nil || !w.On:
		return ""
	case w.Busy:
		return st.Warn.Render("watch: building…")
	case w.BuildError != "":
		return st.Bad.Render("watch: build failed")
	}
	return st.OK.Render("watching")
}

// buildError is the compiler's message of the last failed build, on one
// line: the go command's own lines ("build: go build in …", "# package")
// left out.
func buildError(w *state.WatchStatus) string {
	if w == nil || w.BuildError == "" {
		return ""
	}
	var msgs []string
	for _, l := range strings.Split(w.BuildError, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "build: ") {
			msgs = append(msgs, l)
		}
	}
	if len(msgs) == 0 {
		msgs = []string{firstLine(w.BuildError)}
	}
	// The header says the old instances keep serving; the line is the
	// compiler's.
	return "build failed: " + strings.Join(msgs, " · ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
