package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// Infra supervision: every infra component is probed once a second; after
// infraFailsToRestart failed probes in a row (one slow moment is not a
// crash) it is restarted through the runtime with its data, waiting a
// backoff first that doubles from infraMinBackoff to infraMaxBackoff and
// falls back once the component stayed healthy for infraStableAfter.
const (
	infraProbe          = time.Second
	infraFailsToRestart = 3
	infraMinBackoff     = time.Second
	infraMaxBackoff     = 30 * time.Second
	infraStableAfter    = time.Minute
)

// superviseInfra probes one infra component until supervision stops and
// restarts it when it stays unreachable.
func (o *Orchestrator) superviseInfra(name string) {
	defer o.supers.Done()
	ctx := o.superCtx
	backoff := infraMinBackoff
	fails := 0
	healthySince := time.Now()
	t := time.NewTicker(infraProbe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := dialProbe(ctx, o.infraAddr(name))
		if ctx.Err() != nil {
			return
		}
		o.mu.Lock()
		c := o.comps[name]
		if c.state == state.StateStarting {
			// A restart is under way (a user's, or ours): not a failure.
			fails = 0
			o.mu.Unlock()
			continue
		}
		if err == nil {
			fails = 0
			if c.state != state.StateHealthy {
				healthySince = time.Now()
			}
			o.setLocked(c, state.StateHealthy, "ok")
			if time.Since(healthySince) > infraStableAfter {
				backoff = infraMinBackoff
			}
			o.mu.Unlock()
			continue
		}
		fails++
		o.setLocked(c, state.StateUnhealthy, err.Error())
		o.mu.Unlock()
		if fails < infraFailsToRestart {
			continue
		}
		o.log.Warn("infra unreachable, restarting", "component", name, "probes", fails, "err", err, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		if err := o.restartInfra(ctx, name, "unreachable: "+err.Error()); err != nil && ctx.Err() == nil {
			o.log.Warn("infra restart failed", "component", name, "err", err)
		}
		backoff = min(backoff*2, infraMaxBackoff)
		fails, healthySince = 0, time.Now()
	}
}

// infraAddr is the host:port the host reaches an infra component at.
func (o *Orchestrator) infraAddr(name string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch name {
	case runtime.Postgres:
		return o.infra.Host.Postgres
	case runtime.Broker:
		return hostOf(o.infra.Host.NATSURL)
	default:
		return hostOf(firstOf(o.infra.Host.Etcd))
	}
}

// restartInfra restarts one infra component through the runtime, counts
// it, and takes the endpoints the runtime returns from then on (Infra
// answers them, so whoever connects later follows a changed port). The
// component shows starting meanwhile, then healthy, or unhealthy with the
// error.
func (o *Orchestrator) restartInfra(ctx context.Context, name, why string) error {
	o.infraRestart.Lock()
	defer o.infraRestart.Unlock()
	o.mu.Lock()
	c := o.comps[name]
	if o.down || !o.infraUp {
		o.mu.Unlock()
		return fmt.Errorf("restart %s: the infra is not running", name)
	}
	c.restarts++
	o.setLocked(c, state.StateStarting, "restarting: "+why)
	o.mu.Unlock()
	begin := time.Now()
	inf, err := o.rt.RestartInfra(ctx, name)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.setLocked(c, state.StateUnhealthy, err.Error())
		return err
	}
	if o.down {
		return fmt.Errorf("restart %s: %w", name, context.Canceled)
	}
	o.infra = inf
	o.setInfraEndpointsLocked(inf)
	c.started = time.Now()
	o.setLocked(c, state.StateHealthy, "ok")
	o.log.Info("infra restarted", "component", name, "took", time.Since(begin).Round(time.Millisecond), "why", why)
	return nil
}

// setInfraEndpointsLocked shows the host endpoints of inf on the infra
// components.
func (o *Orchestrator) setInfraEndpointsLocked(inf runtime.Infra) {
	for n, ep := range map[string]string{
		runtime.Postgres: inf.Host.Postgres,
		runtime.Broker:   inf.Host.NATSURL,
		runtime.Registry: strings.Join(inf.Host.Etcd, ","),
	} {
		o.comps[n].endpoint = ep
	}
}

// ErrUnknownComponent marks a name Restart takes that is neither a service
// nor infra.
var ErrUnknownComponent = errors.New("unknown component")

// unknownComponent names the valid ones: services and infra.
func (o *Orchestrator) unknownComponent(name string) error {
	return fmt.Errorf("%w %q (services: %s; infra: %s)", ErrUnknownComponent, name,
		strings.Join(o.opts.Manifest.ServiceNames(), ", "), strings.Join(runtime.InfraComponents, ", "))
}
