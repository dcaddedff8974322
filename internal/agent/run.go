package agent

import (
	"context"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// progressEvery is how often Run reports progress while the workspace
// comes up: often enough for a live display.
const progressEvery = 100 * time.Millisecond

// RunOptions say what Run starts and whom it tells along the way. Every
// hook is optional.
type RunOptions struct {
	// Services are those to start, with their dependencies; empty starts
	// all.
	Services []string
	// Progress receives a snapshot every progressEvery while the workspace
	// comes up, and once more when Up returns.
	Progress func(state.Snapshot)
	// Ready is called once everything is up.
	Ready func(state.Snapshot)
	// Stopping is called as the stop begins; the stop runs under the
	// context it returns, so the caller can abandon a slow one (a second
	// Ctrl-C). Without it the stop is never abandoned.
	Stopping func() context.Context
	// HoldFailure is how long a failed Up keeps the API up for a client to
	// read the failure and ask for down, as up -d does, before stopping
	// anyway.
	HoldFailure time.Duration
}

// Run brings the workspace up and keeps it up until ctx ends or a client
// asks for down, then stops it: the one loop of the foreground `up` and
// the detached agent. It returns Up's error when the start failed, ctx's
// when ctx ended the run, else Down's.
func (a *Agent) Run(ctx context.Context, opts RunOptions) error {
	upCtx, cancelUp := context.WithCancel(ctx)
	defer cancelUp()
	upErr := make(chan error, 1)
	go func() { upErr <- a.Up(upCtx, opts.Services) }()

	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for up := false; !up; {
		select {
		case err := <-upErr:
			a.report(opts.Progress)
			if err == nil {
				up = true
				break
			}
			volumes := false
			if ctx.Err() == nil {
				volumes = a.holdFailure(ctx, opts.HoldFailure)
			}
			_ = a.stop(opts, volumes)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		case <-tick.C:
			a.report(opts.Progress)
		case <-ctx.Done():
			cancelUp()
			<-upErr
			_ = a.stop(opts, false)
			return ctx.Err()
		case v := <-a.DownRequested():
			cancelUp()
			<-upErr
			return a.stop(opts, v)
		}
	}
	tick.Stop()
	a.report(opts.Ready)
	select {
	case <-ctx.Done():
		_ = a.stop(opts, false)
		return ctx.Err()
	case v := <-a.DownRequested():
		return a.stop(opts, v)
	}
}

// holdFailure waits, at most d, for a client to ask for down, and returns
// whether it asked to remove the data too: the client that started this
// agent learns the failure from the snapshot, which goes away with the API.
func (a *Agent) holdFailure(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	select {
	case <-ctx.Done():
		return false
	case v := <-a.DownRequested():
		return v
	}
}

// stop stops the workspace under the context opts.Stopping gives, or one
// never abandoned: the signal that ended the run asks for a graceful stop.
func (a *Agent) stop(opts RunOptions, volumes bool) error {
	ctx := context.Background()
	if opts.Stopping != nil {
		ctx = opts.Stopping()
	}
	return a.Down(ctx, volumes)
}

// report hands fn a snapshot, taken only when there is someone to read it.
func (a *Agent) report(fn func(state.Snapshot)) {
	if fn != nil {
		fn(a.Snapshot())
	}
}
