package dash

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// ErrNoWorkspace is what a Source returns (wrapped) when no agent runs for
// the workspace, so the dashboard can say how to start one.
var ErrNoWorkspace = errors.New("no workspace is up")

// Source is what the dashboard needs from the workspace agent. Every call
// happens inside a tea.Cmd, never in Update or View.
type Source interface {
	Snapshot(ctx context.Context) (state.Snapshot, error)
	Trace(ctx context.Context, traceID string) ([]state.Span, error)
	// FollowLogs calls fn with every component's log lines, starting with
	// those of the last since, then new ones as they come, until ctx ends,
	// the agent goes away or fn fails.
	FollowLogs(ctx context.Context, since time.Duration, fn func(state.LogLine) error) error
	Restart(ctx context.Context, service string) error
	// AddFault and ClearFaults are msctl chaos add and clear.
	AddFault(ctx context.Context, req state.FaultRequest) (state.Fault, error)
	ClearFaults(ctx context.Context) (int, error)
	// SetWatch turns the agent's source watcher (up --watch) on or off.
	SetWatch(ctx context.Context, on bool) (state.WatchStatus, error)
	// Metrics is GET /api/metrics (service empty: every service's rows).
	Metrics(ctx context.Context, service string) (state.Metrics, error)
}

// Dialer connects to the workspace's agent.
type Dialer func(ctx context.Context) (Source, error)

// Redial is a Source that connects on first use and again after any failed
// call, so the dashboard finds an agent that was restarted (with a new port
// and token) without being restarted itself.
func Redial(dial Dialer) Source { return &redial{dial: dial} }

type redial struct {
	dial Dialer
	mu   sync.Mutex
	cur  Source
}

var _ Source = (*redial)(nil)

func (r *redial) get(ctx context.Context) (Source, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil {
		return r.cur, nil
	}
	s, err := r.dial(ctx)
	if err != nil {
		return nil, err
	}
	r.cur = s
	return s, nil
}

// drop forgets s after a failed snapshot (the poll notices a dead agent
// first), unless another caller replaced it already.
func (r *redial) drop(s Source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == s {
		r.cur = nil
	}
}

func (r *redial) Snapshot(ctx context.Context) (state.Snapshot, error) {
	s, err := r.get(ctx)
	if err != nil {
		return state.Snapshot{}, err
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		r.drop(s)
	}
	return snap, err
}

func (r *redial) Trace(ctx context.Context, id string) ([]state.Span, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Trace(ctx, id)
}

func (r *redial) FollowLogs(ctx context.Context, since time.Duration, fn func(state.LogLine) error) error {
	s, err := r.get(ctx)
	if err != nil {
		return err
	}
	return s.FollowLogs(ctx, since, fn)
}

func (r *redial) Restart(ctx context.Context, service string) error {
	s, err := r.get(ctx)
	if err != nil {
		return err
	}
	return s.Restart(ctx, service)
}

func (r *redial) AddFault(ctx context.Context, req state.FaultRequest) (state.Fault, error) {
	s, err := r.get(ctx)
	if err != nil {
		return state.Fault{}, err
	}
	return s.AddFault(ctx, req)
}

func (r *redial) Metrics(ctx context.Context, service string) (state.Metrics, error) {
	s, err := r.get(ctx)
	if err != nil {
		return state.Metrics{}, err
	}
	return s.Metrics(ctx, service)
}

func (r *redial) ClearFaults(ctx context.Context) (int, error) {
	s, err := r.get(ctx)
	if err != nil {
		return 0, err
	}
	return s.ClearFaults(ctx)
}

func (r *redial) SetWatch(ctx context.Context, on bool) (state.WatchStatus, error) {
	s, err := r.get(ctx)
	if err != nil {
		return state.WatchStatus{}, err
	}
	return s.SetWatch(ctx, on)
}
