package orchestrator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// supervise keeps one instance running until Down, or until it is retired.
// Each start takes the component's current environment.
func (o *Orchestrator) supervise(c *component, idx int, in *instance) {
	defer o.supers.Done()
	ctx := o.superCtx
	backoff := o.opts.MinBackoff
	hostPort := 0
	if c.svc.Public {
		hostPort = o.opts.Manifest.Gateway.Port
	} else if c.svc.Port != 0 {
		hostPort = c.svc.Port
	}
	startupExits := 0
	for ctx.Err() == nil {
		o.mu.Lock()
		env, retired := c.env, in.retired
		o.mu.Unlock()
		if retired {
			return
		}
		id := c.name + "-" + strconv.Itoa(idx+1) + "-" + randomHex(3)
		ienv := make(map[string]string, len(env)+1)
		for k, v := range env {
			ienv[k] = v
		}
		ienv["INSTANCE_ID"] = id
		o.logs.secrets.Add(ienv)
		o.setInst(c, in, state.StateStarting, "")
		inst, err := o.rt.Start(ctx, runtime.Spec{
			Service: c.name, Instance: id, HostPort: hostPort, Env: ienv,
			Output: func(stream, line string) {
				o.logs.add(state.LogLine{Time: time.Now(), Service: c.name, Stream: stream, Level: state.LevelOf(line), Text: line})
			},
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var pe *runtime.PortInUseError
			if errors.As(err, &pe) || errors.Is(err, runtime.ErrNotBuilt) {
				o.mu.Lock()
				c.fatal = fmt.Errorf("start: %w", err)
				o.setInstLocked(c, in, state.StateStopped, err.Error())
				o.mu.Unlock()
				return
			}
			o.setInst(c, in, state.StateCrashed, err.Error())
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, o.opts.MaxBackoff)
			continue
		}
		info := inst.Info()
		o.mu.Lock()
		if in.retired {
			// Scaled away while starting: nobody else will stop it.
			o.mu.Unlock()
			_ = inst.Stop(ctx, o.opts.Grace)
			return
		}
		in.cur = inst
		in.gen++
		in.fails = 0
		if idx == 0 {
			c.endpoint, c.started = info.Endpoint, info.StartedAt
		}
		o.setInstLocked(c, in, state.StateWaiting, "")
		o.mu.Unlock()

		o.watch(ctx, c, in, inst)
		if ctx.Err() != nil {
			return
		}
		ex := inst.Exit()
		o.mu.Lock()
		if in.retired {
			o.mu.Unlock()
			return
		}
		restarting := in.restarting
		in.restarting = false
		everReady := in.everReady
		if !everReady && !restarting {
			startupExits++
		}
		c.restarts++
		if !restarting {
			o.setInstLocked(c, in, state.StateCrashed, ex.String())
		}
		if !everReady && startupExits >= startupCrashes && c.fatal == nil {
			c.fatal = fmt.Errorf("%s %d times before becoming ready%s", ex, startupExits, o.tail(c.name))
		}
		o.mu.Unlock()
		o.log.Info("instance exited", "service", c.name, "instance", id, "exit", ex.String(), "restart", restarting)
		if restarting {
			backoff = o.opts.MinBackoff
			continue
		}
		if time.Since(info.StartedAt) > stableAfter {
			backoff = o.opts.MinBackoff
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, o.opts.MaxBackoff)
	}
}

// Restart stops every instance of one service gracefully and waits until
// their replacements are ready, or restarts one infra component with its
// data (restartInfra).
func (o *Orchestrator) Restart(ctx context.Context, name string) error {
	o.mu.Lock()
	c, ok := o.comps[name]
	if !ok {
		o.mu.Unlock()
		return o.unknownComponent(name)
	}
	if c.kind == state.KindInfra {
		o.mu.Unlock()
		return o.restartInfra(ctx, name, "restart requested")
	}
	if !c.selected || len(c.insts) == 0 || c.insts[0].cur == nil {
		o.mu.Unlock()
		return fmt.Errorf("service %s is not running", name)
	}
	type target struct {
		in   *instance
		cur  runtime.Instance
		gen  int
		done bool
	}
	var ts []*target
	for _, in := range c.insts {
		if in.cur == nil {
			continue
		}
		in.restarting = true
		ts = append(ts, &target{in: in, cur: in.cur, gen: in.gen})
	}
	o.mu.Unlock()
	// One instance at a time, so a replicated service keeps serving.
	for _, t := range ts {
		o.mu.Lock()
		t.in.leaving = t.cur
		o.mu.Unlock()
		if err := t.cur.Stop(ctx, o.opts.Grace); err != nil {
			return fmt.Errorf("restart %s: %w", name, err)
		}
		if err := o.waitFor(ctx, func() bool { return t.in.gen > t.gen && t.in.state == state.StateHealthy }); err != nil {
			return fmt.Errorf("restart %s: %w", name, err)
		}
	}
	return nil
}

// waitFor returns once cond, called with o.mu held, is true.
func (o *Orchestrator) waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, o.opts.ReadyTimeout)
	defer cancel()
	for {
		o.mu.Lock()
		ok, ch := cond(), o.changed
		o.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
