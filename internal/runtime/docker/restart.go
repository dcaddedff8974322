package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/docker/go-connections/nat"

	"github.com/msctl/msctl/internal/runtime"
)

// restartGrace is how long a running infra container gets to stop before
// RestartInfra kills it.
const restartGrace = 10 * time.Second

// RestartInfra replaces one infra container with a new one on the same
// volume and, where the spec asked for any free port, on the host ports
// the old one was published on: `docker start` of the old container would
// publish it on new random ports, breaking every address handed out. The
// new container carries the old one's configuration hash, so the next up
// adopts it. Only when such a port was taken meanwhile is it published on a
// new one, and the returned endpoints say so.
func (r *Runtime) RestartInfra(ctx context.Context, component string) (runtime.Infra, error) {
	r.restartMu.Lock()
	defer r.restartMu.Unlock()
	r.mu.Lock()
	st := r.infra
	r.mu.Unlock()
	if !slices.Contains(runtime.InfraComponents, component) {
		return runtime.Infra{}, runtime.UnknownInfraError(component)
	}
	if st == nil {
		return runtime.Infra{}, fmt.Errorf("restart %s: the infra is not started", component)
	}
	var def infraDef
	for _, d := range r.infraDefs(st.spec, st.pgPassword) {
		if d.name == component {
			def = d
		}
	}
	if component == runtime.Postgres {
		r.dropPG()
	}
	ports, err := r.replaceInfra(ctx, def, st.published[component], st.pgPassword)
	if err != nil {
		return runtime.Infra{}, fmt.Errorf("restart %s: %w", component, err)
	}
	next := *st
	next.published = maps.Clone(st.published)
	next.published[component] = ports
	host := hostEndpoints(next.published)
	host.OTLP = st.endpoints.Host.OTLP
	next.endpoints.Host, next.pgHost = host, host.Postgres
	r.mu.Lock()
	r.infra = &next
	r.mu.Unlock()
	return next.endpoints, nil
}

// replaceInfra stops and removes the containers of d's component, starts a
// new one published on the pinned host ports (any free ones when they are
// taken) and waits until it answers.
func (r *Runtime) replaceInfra(ctx context.Context, d infraDef, pinned map[nat.Port]string, pgPassword string) (map[nat.Port]string, error) {
	nw, err := r.ensureNetwork(ctx)
	if err != nil {
		return nil, err
	}
	old, err := r.list(ctx, map[string]string{LabelComponent: d.name})
	if err != nil {
		return nil, err
	}
	for _, c := range old {
		if err := r.stopContainer(ctx, c.ID, restartGrace); err != nil {
			return nil, fmt.Errorf("stop: %w", err)
		}
		if err := r.removeContainer(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, infraTimeout)
	defer cancel()
	d.pinned = pinned
	ports, err := r.ensureInfra(ctx, d, nw.Name)
	if _, taken := errors.AsType[*runtime.PortInUseError](err); (taken || isPortTaken(err)) && len(pinned) > 0 {
		r.log.Warn("the infra's host port was taken meanwhile, publishing on a new one", "component", d.name, "err", err)
		d.pinned = nil
		ports, err = r.ensureInfra(ctx, d, nw.Name)
	}
	if err != nil {
		return nil, err
	}
	if err := r.waitInfra(ctx, d.name, ports, pgPassword); err != nil {
		return nil, err
	}
	return ports, nil
}
