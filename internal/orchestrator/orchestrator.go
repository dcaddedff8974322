// Package orchestrator runs a workspace on a runtime: it starts the infra,
// builds the services, starts them in dependency order (everything whose
// dependencies are ready starts at once), gates on readiness, restarts
// crashed instances with backoff, and stops everything in reverse order.
//
// It knows nothing about processes or containers; that is the runtime's
// business. The agent owns one Orchestrator per workspace and hands its
// state to readers as state.Component values.
package orchestrator

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// Options configure an Orchestrator. Zero durations take the defaults.
type Options struct {
	Manifest *manifest.Manifest
	Runtime  runtime.Runtime
	Log      *slog.Logger
	// OTLPAddr is the host:port of the agent's OTLP/HTTP receiver; empty
	// leaves tracing off in the services.
	OTLPAddr string
	// Grace is how long a stopping instance gets before it is killed.
	Grace time.Duration
	// ReadyTimeout bounds how long Up waits for one service to be ready.
	ReadyTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before restarting a crashed
	// instance; the delay doubles with every crash in a row.
	MinBackoff, MaxBackoff time.Duration
	// Probe checks readiness of one instance; nil means HTTP GET of path,
	// any 2xx is ready.
	Probe func(ctx context.Context, endpoint, path string) error
	// LogLines is how many output lines are kept per service.
	LogLines int
}

// Defaults for zero Options.
const (
	DefaultGrace        = 10 * time.Second
	DefaultReadyTimeout = 2 * time.Minute
	DefaultMinBackoff   = 200 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultLogLines     = 2000

	// startupCrashes is how many times an instance may exit before it was
	// ever ready before Up gives up on it: a service that cannot start should
	// fail `msctl up` with its output, not restart forever.
	startupCrashes = 3
	// stableAfter resets the backoff: an instance that ran this long was not
	// crash-looping.
	stableAfter = 10 * time.Second
	// unhealthyAfter consecutive failed probes turn a healthy instance unhealthy.
	unhealthyAfter = 3
)

// Orchestrator runs one workspace. Up once, then Restart and readers as
// needed, then Down.
type Orchestrator struct {
	opts Options
	rt   runtime.Runtime
	log  *slog.Logger
	logs *logbook

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every state change
	comps     map[string]*component
	order     []string // infra first, then services in dependency order
	infra     runtime.Infra
	infraUp   bool
	superCtx  context.Context
	superStop context.CancelFunc
	supers    sync.WaitGroup
	down      bool

	reconcileMu sync.Mutex // one Reconcile at a time
}

type component struct {
	name     string
	kind     string
	svc      *manifest.Service
	deps     []string
	selected bool
	state    state.State
	health   string
	endpoint string
	since    time.Time // when state was entered
	started  time.Time
	restarts int
	insts    []*instance
	fatal    error             // the service cannot be started; Up fails with it
	env      map[string]string // what new instances start with
	buildID  string            // runtime.BuildEvent.ID of what runs
}

type instance struct {
	state      state.State
	health     string
	cur        runtime.Instance
	gen        int // incremented with every start
	everReady  bool
	restarting bool
	fails      int  // consecutive failed probes
	retired    bool // scaled away: stop, do not restart
}

// New returns an Orchestrator for the manifest on the runtime.
func New(opts Options) (*Orchestrator, error) {
	if opts.Manifest == nil || opts.Runtime == nil {
		return nil, errors.New("orchestrator needs a manifest and a runtime")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts.Grace = orDefault(opts.Grace, DefaultGrace)
	opts.ReadyTimeout = orDefault(opts.ReadyTimeout, DefaultReadyTimeout)
	opts.MinBackoff = orDefault(opts.MinBackoff, DefaultMinBackoff)
	opts.MaxBackoff = orDefault(opts.MaxBackoff, DefaultMaxBackoff)
	if opts.Probe == nil {
		opts.Probe = httpProbe
	}
	if opts.LogLines <= 0 {
		opts.LogLines = DefaultLogLines
	}
	levels, err := opts.Manifest.Order()
	if err != nil {
		return nil, fmt.Errorf("order services: %w", err)
	}
	o := &Orchestrator{
		opts:    opts,
		rt:      opts.Runtime,
		log:     opts.Log,
		logs:    newLogbook(opts.LogLines),
		changed: make(chan struct{}),
		comps:   map[string]*component{},
	}
	o.superCtx, o.superStop = context.WithCancel(context.Background())
	for _, name := range []string{runtime.Postgres, runtime.Broker, runtime.Registry} {
		o.comps[name] = &component{name: name, kind: state.KindInfra, selected: true}
		o.order = append(o.order, name)
	}
	for _, level := range levels {
		for _, name := range level {
			s := opts.Manifest.Services[name]
			c := &component{name: name, kind: state.KindService, svc: s, deps: s.DependsOn}
			for range max(s.Replicas, 1) {
				c.insts = append(c.insts, &instance{})
			}
			o.comps[name] = c
			o.order = append(o.order, name)
		}
	}
	return o, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

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
	now := time.Now()
	for n, ep := range map[string]string{
		runtime.Postgres: inf.Host.Postgres,
		runtime.Broker:   inf.Host.NATSURL,
		runtime.Registry: strings.Join(inf.Host.Etcd, ","),
	} {
		c := o.comps[n]
		c.endpoint, c.started = ep, now
		o.setLocked(c, state.StateHealthy, "ok")
	}
	o.supers.Add(1)
	go o.watchInfra()
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
	for k, v := range svcEnv {
		env[k] = v
	}
	return env, nil
}

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

// Readiness probing: a starting instance is probed every startProbe, so
// that up and its dependents learn of readiness within a few tens of
// milliseconds (a refused connection costs next to nothing); a ready one
// once every readyProbe.
const (
	startProbe = 25 * time.Millisecond
	readyProbe = time.Second
)

// watch probes inst until it exits or supervision stops: quickly until it is
// ready, then once a second.
func (o *Orchestrator) watch(ctx context.Context, c *component, in *instance, inst runtime.Instance) {
	ep, path := inst.Info().Endpoint, c.svc.Health
	delay := startProbe
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-inst.Done():
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := o.opts.Probe(pctx, ep, path)
		cancel()
		select {
		case <-inst.Done():
			return
		default:
		}
		o.mu.Lock()
		switch {
		case err == nil:
			in.fails = 0
			if !in.everReady {
				o.log.Info("instance ready", "service", c.name, "after", time.Since(inst.Info().StartedAt).Round(time.Millisecond))
			}
			in.everReady = true
			o.setInstLocked(c, in, state.StateHealthy, "ok")
			delay = readyProbe
		case in.state == state.StateHealthy || in.state == state.StateUnhealthy:
			in.fails++
			if in.fails >= unhealthyAfter {
				o.setInstLocked(c, in, state.StateUnhealthy, err.Error())
			} else {
				in.health = err.Error()
			}
		default:
			in.health = err.Error()
			c.health = err.Error()
			delay = startProbe
		}
		o.mu.Unlock()
		t.Reset(delay)
	}
}

// watchInfra probes the infra endpoints every few seconds so that ps shows a
// component that went away.
func (o *Orchestrator) watchInfra() {
	defer o.supers.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-o.superCtx.Done():
			return
		case <-t.C:
		}
		o.mu.Lock()
		eps := map[string]string{
			runtime.Postgres: o.infra.Host.Postgres,
			runtime.Broker:   hostOf(o.infra.Host.NATSURL),
			runtime.Registry: hostOf(firstOf(o.infra.Host.Etcd)),
		}
		o.mu.Unlock()
		for name, addr := range eps {
			err := dialProbe(o.superCtx, addr)
			o.mu.Lock()
			c := o.comps[name]
			if err == nil {
				o.setLocked(c, state.StateHealthy, "ok")
			} else if o.superCtx.Err() == nil {
				o.setLocked(c, state.StateUnhealthy, err.Error())
			}
			o.mu.Unlock()
		}
	}
}

// Restart stops every instance of one service gracefully and waits until
// their replacements are ready.
func (o *Orchestrator) Restart(ctx context.Context, name string) error {
	o.mu.Lock()
	c, ok := o.comps[name]
	if !ok || c.kind != state.KindService {
		o.mu.Unlock()
		return fmt.Errorf("unknown service %q (services: %s)", name, strings.Join(o.opts.Manifest.ServiceNames(), ", "))
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

// Ps returns every component, infra first, then services in dependency
// order. Services not selected by Up are left out.
func (o *Orchestrator) Ps() []state.Component {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]state.Component, 0, len(o.order))
	for _, n := range o.order {
		c := o.comps[n]
		if !c.selected {
			continue
		}
		sc := state.Component{
			Name: c.name, Kind: c.kind, State: c.state, Health: c.health,
			Endpoint: c.endpoint, Restarts: c.restarts, StartedAt: c.started,
		}
		for _, in := range c.insts {
			if in.cur != nil && in.state != state.StateStopped && in.state != state.StateCrashed {
				sc.Instances++
			}
		}
		if len(c.insts) > 0 && c.insts[0].cur != nil {
			info := c.insts[0].cur.Info()
			sc.PID, sc.Container = info.PID, info.Container
		}
		out = append(out, sc)
	}
	return out
}

// Since returns when each component entered its current state, for
// progress displays.
func (o *Orchestrator) Since() map[string]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]time.Time, len(o.comps))
	for n, c := range o.comps {
		out[n] = c.since
	}
	return out
}

// Infra returns the infra endpoints; ok is false until the infra runs.
func (o *Orchestrator) Infra() (runtime.Infra, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.infra, o.infraUp
}

// Logs returns the kept lines q selects, then, with q.Follow, the new ones
// as they come. The channel is closed when ctx ends or, without Follow,
// after the kept lines.
func (o *Orchestrator) Logs(ctx context.Context, q state.LogQuery) <-chan state.LogLine {
	out := make(chan state.LogLine, 256)
	var live <-chan state.LogLine
	stop := func() {}
	if q.Follow {
		// Subscribe before reading the backlog so that no line falls between.
		live, stop = o.logs.follow(q)
	}
	backlog := o.logs.query(q)
	go func() {
		defer close(out)
		defer stop()
		var last time.Time
		for _, l := range backlog {
			select {
			case out <- l:
				last = l.Time
			case <-ctx.Done():
				return
			}
		}
		if !q.Follow {
			return
		}
		for {
			select {
			case l := <-live:
				if l.Time.After(last) || l.Time.Equal(last) && !slices.Contains(backlog, l) {
					select {
					case out <- l:
					case <-ctx.Done():
						return
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// tail renders the last output lines of a service for error messages.
func (o *Orchestrator) tail(name string) string {
	lines := o.logs.query(state.LogQuery{Services: []string{name}})
	if len(lines) == 0 {
		return ""
	}
	lines = lines[max(0, len(lines)-10):]
	var b strings.Builder
	b.WriteString("; last output:")
	for _, l := range lines {
		b.WriteString("\n\t")
		b.WriteString(l.Text)
	}
	return b.String()
}

func (o *Orchestrator) setInst(c *component, in *instance, st state.State, health string) {
	o.mu.Lock()
	o.setInstLocked(c, in, st, health)
	o.mu.Unlock()
}

// setInstLocked records an instance's state and derives the component's:
// healthy when every instance is, else the state of the first that is not.
func (o *Orchestrator) setInstLocked(c *component, in *instance, st state.State, health string) {
	in.state, in.health = st, health
	agg, aggHealth := state.StateHealthy, "ok"
	for _, i := range c.insts {
		if i.state != state.StateHealthy {
			agg, aggHealth = i.state, i.health
			break
		}
	}
	o.setLocked(c, agg, aggHealth)
}

func (o *Orchestrator) setLocked(c *component, st state.State, health string) {
	if c.state != st {
		c.since = time.Now()
	}
	c.state, c.health = st, health
	close(o.changed)
	o.changed = make(chan struct{})
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

var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func httpProbe(ctx context.Context, endpoint, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+path, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %w", path, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}

func dialProbe(ctx context.Context, addr string) error {
	if addr == "" {
		return errors.New("no endpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// hostOf strips the scheme of a URL, leaving host:port.
func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
