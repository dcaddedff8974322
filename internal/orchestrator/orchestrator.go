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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// Router, when set, routes services' edges through proxies (edges.go).
	Router Router
	// Secret is the workspace secret services' secrets derive from
	// (internal/secrets); nil gives services none.
	Secret []byte
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

	reconcileMu  sync.Mutex // one Reconcile at a time
	infraRestart sync.Mutex // one infra restart at a time (infra.go)
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
	// leaving is the instance Restart is stopping: it drains, and relays
	// (ReadyEndpoints) send new connections elsewhere meanwhile.
	leaving runtime.Instance
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
