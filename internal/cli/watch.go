package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/state"
)

// watchPoll is how often up --watch reads the watcher's progress; after
// watchGone failed reads in a row (2 s) the agent is taken to be gone.
const (
	watchPoll = 200 * time.Millisecond
	watchGone = 10
)

// watchStatus reads the agent's watch status: through the API, or in
// process for a foreground up.
type watchStatus func(context.Context) (state.WatchStatus, error)

// watchDetached is up --watch against an agent in the background (up -d
// --watch, or up --watch while already up): it turns watching on, prints
// the watcher's progress until Ctrl-C, then turns watching off and leaves
// the workspace running.
func (o *upOptions) watchDetached(ctx context.Context, m *manifest.Manifest) error {
	c, err := o.root.connect(m.Dir())
	if err != nil {
		return err
	}
	before, err := c.Watch(ctx)
	if err != nil {
		return err
	}
	if _, err := c.SetWatch(ctx, true); err != nil {
		return fmt.Errorf("turn watching on: %w", err)
	}
	fmt.Fprintln(o.root.stderr, "watching for changes; Ctrl-C stops watching, the workspace keeps running (msctl down stops it)")
	followWatch(ctx, c.Watch, lastSeq(before), o.root.stderr)
	if ctx.Err() == nil {
		// The agent went away under us: msctl down, or it was killed.
		return errors.New("the workspace's agent stopped, and watching with it")
	}
	if _, err := c.SetWatch(context.Background(), false); err != nil {
		return fmt.Errorf("turn watching off: %w", err)
	}
	fmt.Fprintln(o.root.stderr, "stopped watching; the workspace is still up")
	return nil
}

// watchForeground is up --watch in the foreground, once the workspace is
// up: Ctrl-C then stops watching and the workspace, as for a plain
// foreground up.
func (o *upOptions) watchForeground(ctx context.Context, a *agent.Agent) {
	before := a.WatchStatus()
	if _, err := a.SetWatch(ctx, true); err != nil {
		fmt.Fprintf(o.root.stderr, "watch: %v\n", err)
		return
	}
	go followWatch(ctx, func(context.Context) (state.WatchStatus, error) { return a.WatchStatus(), nil }, lastSeq(before), o.root.stderr)
}

func lastSeq(s state.WatchStatus) int {
	if n := len(s.Events); n > 0 {
		return s.Events[n-1].Seq
	}
	return 0
}

// followWatch prints each watch event after seq once, until ctx ends or
// the agent is gone (watchGone reads in a row).
func followWatch(ctx context.Context, get watchStatus, seq int, w io.Writer) {
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	failed := 0
	for {
		s, err := get(ctx)
		switch {
		case err == nil:
			failed = 0
			for _, ev := range s.Events {
				if ev.Seq > seq {
					fmt.Fprintln(w, ev.Text)
					seq = ev.Seq
				}
			}
		case ctx.Err() == nil:
			if failed++; failed >= watchGone {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
