package orchestrator

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// Ps returns every component, infra first, then services in dependency
// order. Services not selected by Up are left out.
func (o *Orchestrator) Ps() []state.Component {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]state.Component, 0, len(o.order))
	for _, n := range o.order {
		c := o.comps[n]
		if !c.selected {
			continue
		}
		sc := state.Component{
			Name: c.name, Kind: c.kind, State: c.state, Health: o.Scrub(c.health),
			Endpoint: c.endpoint, Restarts: c.restarts, StartedAt: c.started,
		}
		for _, in := range c.insts {
			if in.cur != nil && in.state != state.StateStopped && in.state != state.StateCrashed {
				sc.Instances++
			}
		}
		if len(c.insts) > 0 && c.insts[0].cur != nil {
			info := c.insts[0].cur.Info()
			sc.PID, sc.Container = info.PID, info.Container
		}
		out = append(out, sc)
	}
	return out
}

// Since returns when each component entered its current state, for
// progress displays.
func (o *Orchestrator) Since() map[string]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]time.Time, len(o.comps))
	for n, c := range o.comps {
		out[n] = c.since
	}
	return out
}

// Infra returns the infra endpoints; ok is false until the infra runs.
func (o *Orchestrator) Infra() (runtime.Infra, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.infra, o.infraUp
}

// Logs returns the kept lines q selects, then, with q.Follow, the new ones
// as they come. The channel is closed when ctx ends or, without Follow,
// after the kept lines.
func (o *Orchestrator) Logs(ctx context.Context, q state.LogQuery) <-chan state.LogLine {
	out := make(chan state.LogLine, 256)
	var live <-chan state.LogLine
	stop := func() {}
	if q.Follow {
		// Subscribe before reading the backlog so that no line falls between.
		live, stop = o.logs.follow(q)
	}
	backlog := o.logs.query(q)
	go func() {
		defer close(out)
		defer stop()
		var last time.Time
		for _, l := range backlog {
			select {
			case out <- l:
				last = l.Time
			case <-ctx.Done():
				return
			}
		}
		if !q.Follow {
			return
		}
		for {
			select {
			case l := <-live:
				if l.Time.After(last) || l.Time.Equal(last) && !slices.Contains(backlog, l) {
					select {
					case out <- l:
					case <-ctx.Done():
						return
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// tail renders the last output lines of a service for error messages.
func (o *Orchestrator) tail(name string) string {
	lines := o.logs.query(state.LogQuery{Services: []string{name}})
	if len(lines) == 0 {
		return ""
	}
	lines = lines[max(0, len(lines)-10):]
	var b strings.Builder
	b.WriteString("; last output:")
	for _, l := range lines {
		b.WriteString("\n\t")
		b.WriteString(l.Text)
	}
	return b.String()
}
