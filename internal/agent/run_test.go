package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// A start that fails keeps the API up, its snapshot saying why, until a
// client has read it and asked for down: up -d learns the failure from it.
func TestRunHoldsAFailureUntilDown(t *testing.T) {
	a := startIdle(t)
	stopping := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Run(t.Context(), RunOptions{
			Services:    []string{"nope"},
			HoldFailure: time.Minute,
			Stopping: func() context.Context {
				close(stopping)
				return context.Background()
			},
		})
	}()
	c, err := Connect(a.m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var s state.Snapshot
	for s.Phase != state.PhaseFailed {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v before down was asked", err)
		default:
		}
		if s, err = c.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(s.Error, `unknown service "nope"`) {
		t.Errorf("snapshot error = %q", s.Error)
	}
	select {
	case <-stopping:
		t.Fatal("stopped before down was asked")
	default:
	}
	if err := c.Down(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Errorf("Run = %v, want the start's error", err)
	}
	if Alive(StateDir(a.m.Dir())) {
		t.Error("the agent still holds the workspace")
	}
}

// Without a hold (foreground up) a failed start stops at once, and an
// ended context skips the hold and is what Run returns.
func TestRunStopsAFailure(t *testing.T) {
	for _, tt := range []struct {
		name   string
		hold   time.Duration
		cancel bool
		want   string
	}{
		{name: "no hold", want: `unknown service "nope"`},
		{name: "context ended", hold: time.Hour, cancel: true, want: context.Canceled.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := startIdle(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var seen []string
			err := a.Run(ctx, RunOptions{
				Services:    []string{"nope"},
				HoldFailure: tt.hold,
				Progress: func(s state.Snapshot) {
					seen = append(seen, s.Phase)
					if tt.cancel && s.Phase == state.PhaseFailed {
						cancel()
					}
				},
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want %q", err, tt.want)
			}
			if len(seen) == 0 || seen[len(seen)-1] != state.PhaseFailed {
				t.Errorf("progress saw phases %v, want failed last", seen)
			}
			if Alive(StateDir(a.m.Dir())) {
				t.Error("the agent still holds the workspace")
			}
		})
	}
}
