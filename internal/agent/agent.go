// Package agent is the one owner of a running workspace: it drives the
// orchestrator, collects traces, breaker states, registry entries, broker
// events and logs, and serves them on a token-protected local API. Client
// is how the CLI and the dashboard talk to it.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/msctl/msctl/internal/chaos"
	"github.com/msctl/msctl/internal/envfile"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/otlpexport"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/secrets"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/tracestore"
	"github.com/msctl/msctl/services/kit/bus"
)

// Bounds of what the agent keeps in memory.
const (
	maxEvents     = 1000
	snapshotTrace = 200 // trace summaries per snapshot
)

// Options configure an agent.
type Options struct {
	Manifest *manifest.Manifest
	// Env is the environment (envfile) Manifest was loaded with; a
	// reconcile reloads msctl.yaml with it unless told another.
	Env     string
	Runtime runtime.Runtime
	Log     *slog.Logger
	// Grace is how long a stopping service gets; zero is the orchestrator's
	// default.
	Grace time.Duration
}

// Agent runs one workspace.
type Agent struct {
	m         *manifest.Manifest
	env       string // guarded by mu
	rt        runtime.Runtime
	log       *slog.Logger
	stateDir  string
	orch      *orchestrator.Orchestrator
	traces    *tracestore.Store
	export    *otlpexport.Exporter // nil without observability.export
	metrics   *metricStore
	col       *collector
	token     string
	lockFile  *os.File
	api, otlp *http.Server
	info      Info

	collectStop context.CancelFunc
	collectWG   sync.WaitGroup

	mu      sync.Mutex
	phase   string
	failure string
	portErr *state.PortConflict // the failure, when it is a port in use
	downReq chan bool           // receives volumes once a client asks for down
	closed  bool

	// broker is the DLQ operations' connection, nil until the workspace is
	// up. Atomic rather than under mu: Up holds mu while it sets it.
	broker atomic.Pointer[bus.Bus]

	// chaos drives the proxy of every edge and their faults (chaos.go);
	// nil when the runtime cannot run them, chaosErr saying why.
	chaos    chaos.Controller
	chaosErr error

	watch watching // up --watch (watch.go)
}

// Start takes the workspace's agent lock, starts the API and OTLP
// listeners and writes .msctl/agent.json. It does not start anything of
// the workspace yet: that is Up.
func Start(opts Options) (*Agent, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dir := StateDir(opts.Manifest.Dir())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	lf, err := lock(dir)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		m: opts.Manifest, env: opts.Env, rt: opts.Runtime, log: opts.Log, stateDir: dir,
		metrics: newMetricStore(time.Now), col: newCollector(maxEvents),
		lockFile: lf, phase: state.PhaseStarting, downReq: make(chan bool, 1),
	}
	if err := a.openTelemetry(); err != nil {
		lf.Close()
		return nil, err
	}
	fail := func(err error) (*Agent, error) {
		a.closeTelemetry()
		lf.Close()
		return nil, err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return fail(err)
	}
	a.token = hex.EncodeToString(tok)
	secret, err := secrets.LoadOrCreate(dir)
	if err != nil {
		return fail(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(fmt.Errorf("agent API listener: %w", err))
	}
	otlpLn, err := listenOTLP(opts.Runtime)
	if err != nil {
		apiLn.Close()
		return fail(fmt.Errorf("agent OTLP listener: %w", err))
	}
	var orch atomic.Pointer[orchestrator.Orchestrator]
	var router orchestrator.Router
	cctx, cancel := context.WithTimeout(context.Background(), chaosStartTimeout)
	a.chaos, router, err = startChaos(cctx, opts.Runtime, opts.Manifest, &orch)
	cancel()
	if errors.Is(err, runtime.ErrChaosUnavailable) {
		opts.Log.Warn("no chaos proxies: services dial directly", "reason", err)
		a.chaosErr, err = err, nil
	}
	if err != nil {
		apiLn.Close()
		otlpLn.Close()
		return fail(fmt.Errorf("chaos proxies: %w", err))
	}
	a.orch, err = orchestrator.New(orchestrator.Options{
		Manifest: opts.Manifest, Runtime: opts.Runtime, Log: opts.Log,
		OTLPAddr: otlpLn.Addr().String(), Grace: opts.Grace, Router: router,
		Secret: secret,
	})
	if err != nil {
		apiLn.Close()
		otlpLn.Close()
		if a.chaos != nil {
			a.chaos.Close()
		}
		return fail(err)
	}
	orch.Store(a.orch)
	otlpMux := http.NewServeMux()
	otlpMux.Handle("/v1/traces", tracesHandler(a.traces, a.export))
	otlpMux.Handle("/v1/metrics", metricsHandler(a.metrics, a.export))
	a.otlp = &http.Server{Handler: otlpMux, ReadHeaderTimeout: 5 * time.Second}
	a.api = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = a.otlp.Serve(otlpLn) }()
	go func() { _ = a.api.Serve(apiLn) }()
	a.info = Info{
		PID: os.Getpid(), Addr: apiLn.Addr().String(), Token: a.token, OTLP: otlpLn.Addr().String(),
		Runtime: opts.Runtime.Name(), StartedAt: time.Now().UTC(),
	}
	if err := writeInfo(dir, a.info); err != nil {
		a.closeServers()
		return fail(err)
	}
	return a, nil
}

// Info returns what agent.json says about this agent.
func (a *Agent) Info() Info { return a.info }

// Up starts the workspace (all services, or those named and their
// dependencies) and returns once everything is ready. On failure the
// snapshot's phase is failed with the error; the caller then calls Down.
func (a *Agent) Up(ctx context.Context, services []string) error {
	ctx, cancel := context.WithCancel(ctx)
	a.mu.Lock()
	a.collectStop = cancel
	a.mu.Unlock()
	a.collectWG.Add(1)
	go func() {
		defer a.collectWG.Done()
		a.col.pollBreakers(ctx, a.serviceEndpoints)
	}()
	err := a.orch.ScrubError(a.orch.Up(ctx, orchestrator.UpOptions{Services: services}))
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.phase, a.failure = state.PhaseFailed, err.Error()
		if pe, ok := errors.AsType[*runtime.PortInUseError](err); ok {
			a.portErr = &state.PortConflict{Port: pe.Port, Holder: pe.Holder}
		}
		return err
	}
	a.phase = state.PhaseUp
	if inf, ok := a.orch.Infra(); ok {
		a.startCollectors(ctx, inf.Host)
	}
	return nil
}

// startCollectors follows the registry and the broker. They are
// observers: when one cannot connect, the snapshot just lacks its part.
func (a *Agent) startCollectors(ctx context.Context, ep runtime.Endpoints) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: ep.Etcd, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		a.log.Warn("registry reader", "err", err)
	} else {
		a.collectWG.Add(1)
		go func() {
			defer a.collectWG.Done()
			defer cli.Close()
			var follow sync.WaitGroup
			follow.Go(func() { followRegistry(ctx, cli, a.orch.Infra) })
			a.col.pollRegistry(ctx, cli)
			follow.Wait()
		}()
	}
	nc, err := nats.Connect(ep.NATSURL, nats.Name("msctl-agent"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.SetCustomDialer(newBrokerDialer(a.orch.Infra)))
	if err != nil {
		a.log.Warn("event reader", "err", err)
		return
	}
	if err := a.col.watchEvents(ctx, nc); err != nil {
		a.log.Warn("event reader", "err", err)
		nc.Close()
		return
	}
	if err := a.attachBroker(ctx, nc); err != nil {
		a.log.Warn("DLQ reader", "err", err)
	}
	a.collectWG.Add(1)
	go func() {
		defer a.collectWG.Done()
		<-ctx.Done()
		nc.Close()
	}()
}

func (a *Agent) serviceEndpoints() map[string]string {
	out := map[string]string{}
	for _, c := range a.orch.Ps() {
		if c.Kind == state.KindService && c.Endpoint != "" && (c.State == state.StateHealthy || c.State == state.StateUnhealthy) {
			out[c.Name] = c.Endpoint
		}
	}
	return out
}

// DownRequested delivers, once, a client's request to stop everything;
// the value says whether to remove the data too.
func (a *Agent) DownRequested() <-chan bool { return a.downReq }

// Down stops the workspace, closes the API and releases the workspace. It
// is safe to call more than once.
func (a *Agent) Down(ctx context.Context, volumes bool) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.stopWatch()
	if a.phase != state.PhaseFailed {
		a.phase = state.PhaseStopping
	}
	stop := a.collectStop
	a.mu.Unlock()
	if stop != nil {
		stop()
	}
	a.collectWG.Wait()
	if a.chaos != nil {
		// Faults end with the workspace, and must not hold up its shutdown
		// (a proxy in the workspace goes with it anyway).
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = a.chaos.Clear(cctx)
		cancel()
	}
	err := a.orch.Down(ctx, orchestrator.DownOptions{Volumes: volumes})
	a.closeServers()
	a.closeTelemetry()
	_ = os.Remove(infoPath(a.stateDir))
	a.lockFile.Close()
	return err
}

func (a *Agent) closeServers() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.api.Shutdown(ctx)
	_ = a.otlp.Shutdown(ctx)
	a.api.Close()
	a.otlp.Close()
	if a.chaos != nil {
		a.chaos.Close()
	}
}

// Snapshot copies everything a reader may know.
func (a *Agent) Snapshot() state.Snapshot {
	s := state.Snapshot{
		Workspace:  a.m.Dir(),
		Runtime:    a.rt.Name(),
		AgentPID:   os.Getpid(),
		StartedAt:  a.info.StartedAt,
		TakenAt:    time.Now().UTC(),
		Components: a.orch.Ps(),
		Export:     a.export.Status(),
	}
	a.traces.Flush()
	var err error
	if s.Traces, err = a.traces.List(tracestore.Query{Limit: snapshotTrace}); err != nil {
		a.log.Warn("trace store", "err", err)
	}
	if pub := a.m.Public(); pub != nil {
		s.GatewayURL = "http://127.0.0.1:" + strconv.Itoa(a.m.Gateway.Port)
	}
	a.col.snapshot(&s)
	s.Watch = a.watchSnapshot()
	if a.chaos != nil {
		// A proxy that does not answer shows no faults; chaos ls says why.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.Faults, _ = a.chaos.Faults(ctx)
		cancel()
	}
	a.mu.Lock()
	s.Phase, s.Error, s.PortInUse = a.phase, a.failure, a.portErr
	a.mu.Unlock()
	return s
}

// Restart restarts one service or infra component.
func (a *Agent) Restart(ctx context.Context, name string) error {
	return a.orch.ScrubError(a.orch.Restart(ctx, name))
}

// ErrNotUp is returned by Reconcile while the workspace is not (yet, or
// any more) up.
var ErrNotUp = errors.New("the workspace is not up")

// Reconcile applies msctl.yaml and the .env files of the workspace's
// environment as they are now on disk and the services' current code to
// the running workspace (services limits it to those); see
// orchestrator.Orchestrator.Reconcile.
func (a *Agent) Reconcile(ctx context.Context, services []string) ([]state.Change, error) {
	return a.ReconcileEnv(ctx, services, "")
}

// ReconcileEnv is Reconcile with the files of environment env (empty: the
// one the workspace runs with); from then on the workspace runs with env.
func (a *Agent) ReconcileEnv(ctx context.Context, services []string, env string) ([]state.Change, error) {
	a.mu.Lock()
	phase := a.phase
	if env == "" {
		env = a.env
	}
	a.mu.Unlock()
	if phase != state.PhaseUp {
		return nil, fmt.Errorf("%w: it is %s", ErrNotUp, phase)
	}
	m, err := envfile.Load(a.m.Path(), env)
	if err != nil {
		return nil, err
	}
	changes, err := a.orch.Reconcile(ctx, m, services)
	if err == nil {
		a.mu.Lock()
		a.env = env
		a.mu.Unlock()
	}
	return changes, a.orch.ScrubError(err)
}

// Logs streams log lines; see orchestrator.Orchestrator.Logs.
func (a *Agent) Logs(ctx context.Context, q state.LogQuery) <-chan state.LogLine {
	return a.orch.Logs(ctx, q)
}

func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/snapshot", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Snapshot())
	})
	a.traceRoutes(mux)
	mux.HandleFunc("GET /api/logs", a.handleLogs)
	a.dlqRoutes(mux)
	a.chaosRoutes(mux)
	a.watchRoutes(mux)
	a.metricsRoutes(mux)
	mux.HandleFunc("POST /api/restart/{name}", func(w http.ResponseWriter, r *http.Request) {
		err := a.Restart(r.Context(), r.PathValue("name"))
		switch {
		case errors.Is(err, orchestrator.ErrUnknownComponent):
			writeError(w, http.StatusNotFound, "not_found", err.Error())
			return
		case err != nil:
			writeError(w, http.StatusConflict, "restart_failed", err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/reconcile", func(w http.ResponseWriter, r *http.Request) {
		var services []string
		if s := r.URL.Query().Get("service"); s != "" {
			services = strings.Split(s, ",")
		}
		changes, err := a.ReconcileEnv(r.Context(), services, r.URL.Query().Get("env"))
		var me *manifest.Error
		var mes manifest.Errors
		switch {
		case errors.Is(err, ErrNotUp) || errors.Is(err, orchestrator.ErrRestartNeeded):
			writeError(w, http.StatusConflict, "restart_needed", err.Error())
		case errors.As(err, &me) || errors.As(err, &mes):
			writeError(w, http.StatusUnprocessableEntity, "bad_manifest", err.Error())
		case err != nil:
			writeError(w, http.StatusInternalServerError, "reconcile_failed", err.Error())
		default:
			writeJSON(w, http.StatusOK, reconcileBody{Changed: changes})
		}
	})
	mux.HandleFunc("POST /api/down", func(w http.ResponseWriter, r *http.Request) {
		select {
		case a.downReq <- r.URL.Query().Get("volumes") == "1":
		default: // already requested
		}
		w.WriteHeader(http.StatusAccepted)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong token (see .msctl/agent.json)")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *Agent) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var opts state.LogQuery
	if s := q.Get("service"); s != "" {
		opts.Services = strings.Split(s, ",")
	}
	if g := q.Get("grep"); g != "" {
		re, err := regexp.Compile(g)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_grep", err.Error())
			return
		}
		opts.Grep = re
	}
	if s := q.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_since", err.Error())
			return
		}
		opts.Since = time.Now().Add(-d)
	}
	opts.Follow = q.Get("follow") == "1"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	lines := a.Logs(r.Context(), opts)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return
			}
			if enc.Encode(l) != nil {
				return
			}
			// Flush when the backlog is drained, not per line.
			if fl != nil && len(lines) == 0 {
				fl.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// reconcileBody is the answer of POST /api/reconcile.
type reconcileBody struct {
	Changed []state.Change `json:"changed"`
}

// errorBody is the API's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// listenOTLP listens for telemetry on loopback, or where a runtime whose
// services cannot reach loopback says; if its port is taken, on another.
func listenOTLP(rt runtime.Runtime) (net.Listener, error) {
	l, ok := rt.(runtime.OTLPListener)
	if !ok {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	addr, err := l.OTLPListenAddr(context.Background())
	if err != nil {
		return nil, err
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		return ln, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}
