package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/watch"
)

// maxWatchEvents bounds the progress lines the agent keeps for followers.
const maxWatchEvents = 100

// watching is the agent's source watcher: `up --watch` and the
// dashboard turn it on and off, each settled change goes through
// Reconcile (only for the services it affects), and followers read its
// progress from the status.
type watching struct {
	mu     sync.Mutex
	status *state.WatchStatus // nil until first turned on
	seq    int
	cancel context.CancelFunc // stops the current watcher; nil when off
}

// SetWatch turns watching the workspace's sources on or off and returns
// the status. Turning it on needs the workspace up; a change being applied
// when it is turned off is still applied.
func (a *Agent) SetWatch(ctx context.Context, on bool) (state.WatchStatus, error) {
	w := &a.watch
	if !on {
		w.mu.Lock()
		if w.cancel != nil {
			w.cancel()
			w.cancel = nil
			w.status.On = false
			w.addLocked(state.WatchEvent{Stage: state.WatchInfo, Text: "stopped watching"})
		}
		w.mu.Unlock()
		return a.WatchStatus(), nil
	}
	a.mu.Lock()
	phase := a.phase
	a.mu.Unlock()
	if phase != state.PhaseUp {
		return state.WatchStatus{}, fmt.Errorf("%w: it is %s", ErrNotUp, phase)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		return w.copyLocked(), nil
	}
	var svcs []watch.Service
	for _, c := range a.orch.Ps() {
		if s := a.m.Services[c.Name]; c.Kind == state.KindService && s != nil {
			svcs = append(svcs, watch.Service{Name: c.Name, Dir: s.Dir, Go: s.Language == "go" || s.Language == ""})
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	wr, err := watch.New(ctx, watch.Options{Root: a.m.Dir(), Manifest: a.m.Path(), Services: svcs, Log: a.log})
	if err != nil {
		cancel()
		return state.WatchStatus{}, err
	}
	w.cancel = cancel
	if w.status == nil {
		w.status = &state.WatchStatus{}
	}
	w.status.On = true
	w.addLocked(state.WatchEvent{Stage: state.WatchInfo, Text: "watching " + strings.Join(names(svcs), ", ") + " and msctl.yaml"})
	go func() {
		if err := wr.Run(wctx, a.applyChange); err != nil {
			a.log.Warn("watch", "err", err)
		}
	}()
	return w.copyLocked(), nil
}

func names(svcs []watch.Service) []string {
	out := make([]string, len(svcs))
	for i, s := range svcs {
		out[i] = s.Name
	}
	return out
}

// WatchStatus returns a copy of the watcher's status.
func (a *Agent) WatchStatus() state.WatchStatus {
	a.watch.mu.Lock()
	defer a.watch.mu.Unlock()
	return a.watch.copyLocked()
}

// watchSnapshot is the status for the snapshot, nil when never turned on.
func (a *Agent) watchSnapshot() *state.WatchStatus {
	a.watch.mu.Lock()
	defer a.watch.mu.Unlock()
	if a.watch.status == nil {
		return nil
	}
	s := a.watch.copyLocked()
	return &s
}

func (w *watching) copyLocked() state.WatchStatus {
	if w.status == nil {
		return state.WatchStatus{}
	}
	s := *w.status
	s.Events = slices.Clone(s.Events)
	return s
}

// addLocked appends a progress line and makes it the last result.
func (w *watching) addLocked(ev state.WatchEvent) {
	w.seq++
	ev.Seq, ev.Time = w.seq, time.Now().UTC()
	w.status.Events = append(w.status.Events, ev)
	if n := len(w.status.Events); n > maxWatchEvents {
		w.status.Events = slices.Delete(w.status.Events, 0, n-maxWatchEvents)
	}
	if ev.Stage != state.WatchDetected {
		w.status.LastResult = ev.Text
	}
}

func (w *watching) add(ev state.WatchEvent, busy bool, buildErr *string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status.Busy = busy
	if buildErr != nil {
		w.status.BuildError = *buildErr
	}
	w.addLocked(ev)
}

// applyChange builds and applies one settled batch of changes through
// Reconcile: only the affected services, or everything when msctl.yaml
// changed (Reconcile says what it cannot apply in place).
func (a *Agent) applyChange(b watch.Batch) {
	w := &a.watch
	running := map[string]int{}
	for _, c := range a.orch.Ps() {
		if c.Kind == state.KindService {
			running[c.Name] = c.Instances
		}
	}
	var svcs []string
	for _, s := range b.Services {
		if _, ok := running[s]; ok {
			svcs = append(svcs, s)
		}
	}
	who := strings.Join(svcs, ", ")
	if b.Manifest {
		who, svcs = "msctl.yaml", nil
	} else if len(svcs) == 0 {
		return // only services this workspace does not run
	}
	begin := time.Now()
	w.add(state.WatchEvent{Stage: state.WatchDetected, Services: svcs, Text: who + ": change detected → building"}, true, nil)
	// The reconcile outlives the watcher being turned off: stopping half
	// way through would leave a service with old and new instances.
	changes, err := a.Reconcile(context.Background(), svcs)
	took := time.Since(begin)
	var ev state.WatchEvent
	var buildErr *string
	switch {
	case errors.Is(err, orchestrator.ErrRestartNeeded):
		ev = state.WatchEvent{Stage: state.WatchRestartNeeded, Text: fmt.Sprintf("%s: %v; apply it with msctl down, then msctl up (still watching)", who, err)}
	case err != nil:
		msg := err.Error()
		buildErr = &msg
		ev = state.WatchEvent{Stage: state.WatchFailed, Text: fmt.Sprintf("%s: change detected → building → failed (%s); the running instances keep serving:\n%s", who, took.Round(100*time.Millisecond), msg)}
	default:
		clean := ""
		buildErr = &clean
		ev = state.WatchEvent{Stage: state.WatchApplied, Text: describeChanges(who, changes, running, took)}
	}
	ev.Services, ev.Took = svcs, took
	w.add(ev, false, buildErr)
}

// describeChanges is the line of an applied change, e.g.
// "gateway: change detected → building → replaced 2/2 (1.4 s)".
func describeChanges(who string, changes []state.Change, instances map[string]int, took time.Duration) string {
	if len(changes) == 0 {
		return fmt.Sprintf("%s: change detected → building → unchanged (%s)", who, took.Round(100*time.Millisecond))
	}
	var parts []string
	for _, c := range changes {
		what := c.What
		if why, ok := strings.CutSuffix(what, ", restarted"); ok {
			n := instances[c.Service]
			what = fmt.Sprintf("replaced %d/%d", n, n)
			if why != "code changed" {
				what = why + " → " + what
			}
		}
		if c.Service != who {
			what = c.Service + ": " + what
		}
		parts = append(parts, what)
	}
	return fmt.Sprintf("%s: change detected → building → %s (%s)", who, strings.Join(parts, "; "), took.Round(100*time.Millisecond))
}

// stopWatch ends watching for good (Down).
func (a *Agent) stopWatch() {
	a.watch.mu.Lock()
	defer a.watch.mu.Unlock()
	if a.watch.cancel != nil {
		a.watch.cancel()
		a.watch.cancel = nil
		a.watch.status.On = false
	}
}

// watchRoutes serves GET /api/watch (the status) and POST
// /api/watch?on=1|0 (turn it on or off; answers the status).
func (a *Agent) watchRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/watch", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.WatchStatus())
	})
	mux.HandleFunc("POST /api/watch", func(w http.ResponseWriter, r *http.Request) {
		var on bool
		switch r.URL.Query().Get("on") {
		case "1":
			on = true
		case "0":
		default:
			writeError(w, http.StatusBadRequest, "bad_request", "say on=1 to watch or on=0 to stop")
			return
		}
		s, err := a.SetWatch(r.Context(), on)
		switch {
		case errors.Is(err, ErrNotUp):
			writeError(w, http.StatusConflict, "not_up", err.Error())
		case err != nil:
			writeError(w, http.StatusInternalServerError, "watch_failed", err.Error())
		default:
			writeJSON(w, http.StatusOK, s)
		}
	})
}

// Watch reads the agent's watch status.
func (c *Client) Watch(ctx context.Context) (state.WatchStatus, error) {
	var s state.WatchStatus
	err := c.do(ctx, http.MethodGet, "/api/watch", &s)
	return s, err
}

// SetWatch turns watching on or off; see Agent.SetWatch.
func (c *Client) SetWatch(ctx context.Context, on bool) (state.WatchStatus, error) {
	q := url.Values{"on": {"0"}}
	if on {
		q.Set("on", "1")
	}
	var s state.WatchStatus
	err := c.do(ctx, http.MethodPost, "/api/watch?"+q.Encode(), &s)
	return s, err
}
