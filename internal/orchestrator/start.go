package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/secrets"
	"github.com/msctl/msctl/internal/state"
)

// UpOptions select what Up starts.
type UpOptions struct {
	// Services to start, with everything they depend on; empty starts all.
	Services []string
}

// Up starts the infra and the selected services and returns once all of
// them are ready, or with the first error that keeps one from ever being
// ready. Crashed instances keep being restarted after Up returns, until Down.
func (o *Orchestrator) Up(ctx context.Context, opts UpOptions) error {
	sel, err := o.selectServices(opts.Services)
	if err != nil {
		return err
	}
	o.mu.Lock()
	replicas := map[string]int{}
	for _, name := range o.order {
		c := o.comps[name]
		if c.kind == state.KindService {
			replicas[name] = len(c.insts)
			c.selected = sel[name]
			if c.selected {
				o.setLocked(c, state.StateBuilding, "")
			}
		} else {
			o.setLocked(c, state.StateStarting, "")
		}
	}
	o.mu.Unlock()

	clean := func(ctx context.Context) error { return o.rt.Cleanup(ctx, false) }
	if p, ok := o.rt.(runtime.Pruner); ok {
		clean = func(ctx context.Context) error { return p.Prune(ctx, replicas) }
	}
	if err := clean(ctx); err != nil {
		return fmt.Errorf("clean up after the previous run: %w", err)
	}

	// Infra and builds do not depend on each other: overlap them.
	begin := time.Now()
	infraErr := make(chan error, 1)
	go func() {
		err := o.startInfra(ctx)
		o.log.Info("infra started", "took", time.Since(begin).Round(time.Millisecond), "err", err)
		infraErr <- err
	}()
	buildErr := o.build(ctx)
	o.log.Info("build finished", "took", time.Since(begin).Round(time.Millisecond), "err", buildErr)
	if err := <-infraErr; err != nil {
		return err
	}
	if buildErr != nil {
		return buildErr
	}

	// The first service that cannot start fails Up; the others stop waiting
	// for it. Its own error is the one worth showing, not its dependents'.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(sel))
	for name := range sel {
		go func() { errs <- o.startService(sctx, o.comps[name]) }()
	}
	var cause, other error
	for range sel {
		err := <-errs
		switch {
		case err == nil:
		case errors.Is(err, errDependency) || errors.Is(err, context.Canceled):
			other = cmp.Or(other, err)
		default:
			cause = cmp.Or(cause, err)
			cancel()
		}
	}
	if cause == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err := cmp.Or(cause, other); err != nil {
		return err
	}
	o.log.Info("up", "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// errDependency marks a service that did not start because a dependency
// did not.
var errDependency = errors.New("dependency not ready")

func (o *Orchestrator) selectServices(names []string) (map[string]bool, error) {
	sel := map[string]bool{}
	var add func(string) error
	add = func(n string) error {
		c, ok := o.comps[n]
		if !ok || c.kind != state.KindService {
			return fmt.Errorf("unknown service %q (services: %s)", n, strings.Join(o.opts.Manifest.ServiceNames(), ", "))
		}
		if sel[n] {
			return nil
		}
		sel[n] = true
		for _, d := range c.deps {
			if err := add(d); err != nil {
				return err
			}
		}
		return nil
	}
	if len(names) == 0 {
		names = o.opts.Manifest.ServiceNames()
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	return sel, nil
}

func (o *Orchestrator) startInfra(ctx context.Context) error {
	m := o.opts.Manifest
	inf, err := o.rt.StartInfra(ctx, runtime.InfraSpec{
		PostgresPort:  m.Infra.Postgres.Port,
		BrokerPort:    m.Infra.Broker.Port,
		RegistryPort:  m.Infra.Registry.Port,
		PostgresImage: m.Infra.Postgres.Ref(),
		BrokerImage:   m.Infra.Broker.Ref(),
		RegistryImage: m.Infra.Registry.Ref(),
		OTLPHostAddr:  o.opts.OTLPAddr,
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		for _, n := range []string{runtime.Postgres, runtime.Broker, runtime.Registry} {
			o.setLocked(o.comps[n], state.StateStopped, err.Error())
		}
		return fmt.Errorf("start infra: %w", err)
	}
	o.infra, o.infraUp = inf, true
	o.setInfraEndpointsLocked(inf)
	now := time.Now()
	for _, n := range runtime.InfraComponents {
		c := o.comps[n]
		c.started = now
		o.setLocked(c, state.StateHealthy, "ok")
		o.supers.Add(1)
		go o.superviseInfra(n)
	}
	return nil
}

func (o *Orchestrator) build(ctx context.Context) error {
	var specs []runtime.BuildSpec
	o.mu.Lock()
	for _, n := range o.order {
		if c := o.comps[n]; c.kind == state.KindService && c.selected {
			specs = append(specs, runtime.BuildSpec{Name: n, Dir: c.svc.Dir, Language: c.svc.Language})
		}
	}
	o.mu.Unlock()
	err := o.rt.Build(ctx, specs, func(ev runtime.BuildEvent) {
		if !ev.Done {
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		c := o.comps[ev.Service]
		if ev.Err != nil {
			o.setLocked(c, state.StateStopped, "build failed")
			return
		}
		c.buildID = ev.ID
		o.log.Info("built", "service", ev.Service, "cached", ev.Cached, "after", time.Since(c.since).Round(time.Millisecond))
		o.setLocked(c, state.StateStarting, "waiting for dependencies")
	})
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	return nil
}

// startService waits for the dependencies of c, prepares its database and
// starts its instances, then waits until every instance is ready once.
func (o *Orchestrator) startService(ctx context.Context, c *component) error {
	for _, d := range c.deps {
		if err := o.waitReady(ctx, o.comps[d]); err != nil {
			return fmt.Errorf("start %s: %w: %s: %w", c.name, errDependency, d, err)
		}
	}
	env, err := o.env(ctx, c, c.svc.Env)
	if err != nil {
		o.mu.Lock()
		o.setLocked(c, state.StateStopped, err.Error())
		o.mu.Unlock()
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	o.mu.Lock()
	if o.down {
		o.mu.Unlock()
		return fmt.Errorf("start %s: %w", c.name, context.Canceled)
	}
	c.env = env
	for i, in := range c.insts {
		o.supers.Add(1)
		go o.supervise(c, i, in)
	}
	o.mu.Unlock()
	if err := o.waitReady(ctx, c); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	return nil
}

// waitReady returns once every instance of c has been ready once, or with
// the reason it never will be.
func (o *Orchestrator) waitReady(ctx context.Context, c *component) error {
	ctx, cancel := context.WithTimeout(ctx, o.opts.ReadyTimeout)
	defer cancel()
	for {
		o.mu.Lock()
		ready := true
		for _, in := range c.insts {
			ready = ready && in.everReady
		}
		fatal, ch := c.fatal, o.changed
		health := c.health
		o.mu.Unlock()
		switch {
		case ready:
			return nil
		case fatal != nil:
			return fatal
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not ready after %s (last probe: %s)%s", o.opts.ReadyTimeout, health, o.tail(c.name))
			}
			return ctx.Err()
		}
	}
}

// env is the environment of every instance of c, with the service's own
// variables svcEnv from the manifest, without the addresses only the
// runtime knows.
func (o *Orchestrator) env(ctx context.Context, c *component, svcEnv map[string]string) (map[string]string, error) {
	o.mu.Lock()
	inf := o.infra.Services
	o.mu.Unlock()
	env := map[string]string{
		"SERVICE_NAME":   c.name,
		"ETCD_ENDPOINTS": strings.Join(inf.Etcd, ","),
		"NATS_URL":       inf.NATSURL,
	}
	if inf.OTLP != "" {
		env["OTEL_EXPORTER_OTLP_ENDPOINT"] = inf.OTLP
	}
	if c.svc.Public {
		env["GATEWAY_ROUTES"] = o.opts.Manifest.GatewayRoutes()
	}
	if c.svc.Database {
		dsn, err := o.rt.EnsureDatabase(ctx, c.name)
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		env["DATABASE_URL"] = dsn
	}
	if err := o.route(c, env); err != nil {
		return nil, err
	}
	if o.opts.Secret != nil {
		sec, err := secrets.Env(o.opts.Secret, c.name, c.svc.Secrets)
		if err != nil {
			return nil, err
		}
		maps.Copy(env, sec)
	}
	for k, v := range svcEnv {
		env[k] = v
	}
	return env, nil
}
