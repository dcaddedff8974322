package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// ErrRestartNeeded wraps manifest changes a running workspace cannot take
// in place (services added or removed, ports, dependencies, routes, infra):
// they need down and up.
var ErrRestartNeeded = errors.New("msctl.yaml changed in a way a running workspace cannot apply")

// Reconcile brings the running workspace in line with m (the manifest as it
// is now on disk) and with the services' current code: it rebuilds the
// running services, replaces the instances of those whose build output or
// environment changed, one instance at a time, and starts or stops
// instances of those whose replica count changed. Everything else is left
// alone. services limits it to those services; empty means every running
// one. It returns what it changed, in dependency order, once the changed
// services are ready again. Call it only after Up returned nil.
func (o *Orchestrator) Reconcile(ctx context.Context, m *manifest.Manifest, services []string) ([]state.Change, error) {
	o.reconcileMu.Lock()
	defer o.reconcileMu.Unlock()
	if diff := structuralDiff(o.opts.Manifest, m); diff != "" {
		return nil, fmt.Errorf("%w: %s", ErrRestartNeeded, diff)
	}
	o.mu.Lock()
	if o.down || !o.infraUp {
		o.mu.Unlock()
		return nil, errors.New("the workspace is not up")
	}
	var names []string
	for _, n := range o.order {
		if c := o.comps[n]; c.kind == state.KindService && c.selected && (len(services) == 0 || slices.Contains(services, n)) {
			names = append(names, n)
		}
	}
	o.mu.Unlock()
	for _, s := range services {
		if !slices.Contains(names, s) {
			return nil, fmt.Errorf("%w: service %s is not running in this workspace", ErrRestartNeeded, s)
		}
	}

	specs := make([]runtime.BuildSpec, 0, len(names))
	for _, n := range names {
		s := m.Services[n]
		specs = append(specs, runtime.BuildSpec{Name: n, Dir: s.Dir, Language: s.Language})
	}
	var emu sync.Mutex
	built := map[string]runtime.BuildEvent{}
	err := o.rt.Build(ctx, specs, func(ev runtime.BuildEvent) {
		if ev.Done {
			emu.Lock()
			built[ev.Service] = ev
			emu.Unlock()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}

	var changes []state.Change
	for _, n := range names {
		c, svc, ev := o.comps[n], m.Services[n], built[n]
		env, err := o.env(ctx, c, svc.Env)
		if err != nil {
			return changes, fmt.Errorf("%s: %w", n, err)
		}
		o.mu.Lock()
		codeChanged := !ev.Cached
		if ev.ID != "" {
			codeChanged = ev.ID != c.buildID
		}
		envChanged := !maps.Equal(env, c.env)
		// New instances, whether restarted, scaled or crash-restarted,
		// start with what is built and configured now.
		c.env, c.buildID = env, ev.ID
		have := len(c.insts)
		o.mu.Unlock()

		var why string
		switch {
		case codeChanged && envChanged:
			why = "code and env changed"
		case codeChanged:
			why = "code changed"
		case envChanged:
			why = "env changed"
		}
		if why != "" {
			o.log.Info("reconcile: restarting", "service", n, "why", why)
			if err := o.Restart(ctx, n); err != nil {
				return changes, err
			}
			changes = append(changes, state.Change{Service: n, What: why + ", restarted"})
		}
		if want := max(svc.Replicas, 1); want != have {
			o.log.Info("reconcile: scaling", "service", n, "from", have, "to", want)
			if err := o.scale(ctx, c, want); err != nil {
				return changes, fmt.Errorf("scale %s: %w", n, err)
			}
			changes = append(changes, state.Change{Service: n, What: "scaled " + strconv.Itoa(have) + " → " + strconv.Itoa(want)})
		}
	}
	return changes, nil
}

// scale starts or stops instances of c until it has want, and returns once
// the new ones are ready or the extra ones are gone.
func (o *Orchestrator) scale(ctx context.Context, c *component, want int) error {
	o.mu.Lock()
	if o.down {
		o.mu.Unlock()
		return errors.New("the workspace is stopping")
	}
	var extra []*instance
	if want < len(c.insts) {
		extra = c.insts[want:]
		c.insts = slices.Clone(c.insts[:want])
	}
	var stops []runtime.Instance
	for _, in := range extra {
		in.retired = true
		if in.cur != nil {
			stops = append(stops, in.cur)
		}
	}
	for i := len(c.insts); i < want; i++ {
		in := &instance{}
		c.insts = append(c.insts, in)
		o.supers.Add(1)
		go o.supervise(c, i, in)
	}
	o.mu.Unlock()

	errs := make([]error, len(stops))
	var wg sync.WaitGroup
	for i, inst := range stops {
		wg.Go(func() { errs[i] = inst.Stop(ctx, o.opts.Grace) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return o.waitReady(ctx, c)
}

// structuralDiff describes the first difference between two manifests that
// Reconcile cannot apply, "" when there is none: everything may differ but
// the services' env and replicas.
func structuralDiff(old, cur *manifest.Manifest) string {
	switch {
	case old.Project != cur.Project:
		return "project changed"
	case !reflect.DeepEqual(old.Gateway, cur.Gateway):
		return "gateway changed"
	case !reflect.DeepEqual(old.Infra, cur.Infra):
		return "infra changed"
	}
	for _, n := range old.ServiceNames() {
		if cur.Services[n] == nil {
			return "service " + n + " removed"
		}
	}
	for _, n := range cur.ServiceNames() {
		a, b := old.Services[n], cur.Services[n]
		if a == nil {
			return "service " + n + " added"
		}
		if !reflect.DeepEqual(shape(a), shape(b)) {
			return "service " + n + " changed beyond env and replicas"
		}
	}
	return ""
}

// shape is a service without what Reconcile applies in place and without
// where in the file it is declared.
func shape(s *manifest.Service) manifest.Service {
	c := *s
	c.Env, c.Replicas, c.Line = nil, 0, 0
	return c
}
