package dash

import (
	"context"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/msctl/msctl/internal/state"
)

// presetFault is what x puts on the selected breaker's edge: long enough to
// watch the breaker open, short enough to watch it close again.
const presetFault = 30 * time.Second

// faultMsg is the outcome of x or X.
type faultMsg struct {
	done string // what happened, for the status line
	err  error
}

// breakEdge takes the selected breaker's edge (its service -> the upstream
// it guards) down for presetFault.
func (m *Model) breakEdge() tea.Cmd {
	b, ok := m.breakers.SelectedBreaker()
	if !ok {
		m.setStatus("select a breaker: x takes its edge down", true)
		return nil
	}
	if m.err != nil {
		m.setStatus("cannot add a fault: the agent is unreachable", true)
		return nil
	}
	req := state.FaultRequest{FaultSpec: state.FaultSpec{From: b.Service, To: b.Name, Down: true}, ForMS: presetFault.Milliseconds()}
	m.setStatus("taking "+req.Edge()+" down…", false)
	src := m.src
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		f, err := src.AddFault(ctx, req)
		return faultMsg{done: fmt.Sprintf("fault %s: %s down for %s", f.ID, req.Edge(), presetFault), err: err}
	}
}

// clearFaults removes every fault.
func (m *Model) clearFaults() tea.Cmd {
	if m.err != nil {
		m.setStatus("cannot clear faults: the agent is unreachable", true)
		return nil
	}
	src := m.src
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		n, err := src.ClearFaults(ctx)
		return faultMsg{done: fmt.Sprintf("cleared %d faults", n), err: err}
	}
}

func (m *Model) faultDone(msg faultMsg) {
	if msg.err != nil {
		m.setStatus("chaos: "+msg.err.Error(), true)
		return
	}
	m.setStatus(msg.done, false)
}
