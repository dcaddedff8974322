package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// DownOptions say how to stop.
type DownOptions struct {
	// Volumes also removes the data of the infra.
	Volumes bool
}

// Down stops every service, dependents before their dependencies, then the
// infra. It is safe to call more than once and after a failed Up.
func (o *Orchestrator) Down(ctx context.Context, opts DownOptions) error {
	o.mu.Lock()
	o.down = true
	o.mu.Unlock()
	o.superStop()
	o.supers.Wait()

	var errs []error
	for i := len(o.order) - 1; i >= 0; {
		// Stop one dependency level at a time, in parallel within it.
		level := o.levelOf(o.order[i])
		var wg sync.WaitGroup
		var emu sync.Mutex
		for ; i >= 0 && o.levelOf(o.order[i]) == level; i-- {
			c := o.comps[o.order[i]]
			if c.kind != state.KindService {
				continue
			}
			o.mu.Lock()
			var insts []runtime.Instance
			for _, in := range c.insts {
				if in.cur != nil {
					insts = append(insts, in.cur)
				}
			}
			o.mu.Unlock()
			for _, inst := range insts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := inst.Stop(ctx, o.opts.Grace); err != nil {
						emu.Lock()
						errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
						emu.Unlock()
					}
				}()
			}
			o.mu.Lock()
			o.setLocked(c, state.StateStopped, "")
			for _, in := range c.insts {
				in.state = state.StateStopped
			}
			o.mu.Unlock()
		}
		wg.Wait()
	}
	if err := o.rt.StopInfra(ctx, o.opts.Grace); err != nil {
		errs = append(errs, fmt.Errorf("stop infra: %w", err))
	}
	if err := o.rt.Cleanup(ctx, opts.Volumes); err != nil {
		errs = append(errs, fmt.Errorf("clean up: %w", err))
	}
	o.mu.Lock()
	for _, n := range []string{runtime.Postgres, runtime.Broker, runtime.Registry} {
		o.setLocked(o.comps[n], state.StateStopped, "")
	}
	o.infraUp = false
	o.mu.Unlock()
	return errors.Join(errs...)
}

// levelOf is the dependency depth of a component: infra is 0, a service
// without dependencies 1, and so on.
func (o *Orchestrator) levelOf(name string) int {
	c := o.comps[name]
	if c.kind == state.KindInfra {
		return 0
	}
	lvl := 1
	for _, d := range c.deps {
		lvl = max(lvl, o.levelOf(d)+1)
	}
	return lvl
}
