package agent

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

func TestChaosAPI(t *testing.T) {
	_, c := idleClient(t)
	ctx := t.Context()

	_, err := c.AddFault(ctx, state.FaultRequest{FaultSpec: state.FaultSpec{From: "echo", To: "nowhere", Down: true}})
	if ae, ok := errors.AsType[*APIError](err); !ok || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "edges: echo->etcd, echo->nats") {
		t.Errorf("unknown edge: %v, want 400 naming the edges", err)
	}

	f, err := c.AddFault(ctx, state.FaultRequest{FaultSpec: state.FaultSpec{From: "echo", To: "nats", LatencyMS: 100}, ForMS: 60000})
	if err != nil {
		t.Fatal(err)
	}
	if f.ID == "" || f.ExpiresAt == nil || f.ExpiresAt.Sub(f.CreatedAt) != time.Minute {
		t.Errorf("added %+v, want an id and an expiry a minute on", f)
	}
	if fs, err := c.Faults(ctx); err != nil || len(fs) != 1 || fs[0].ID != f.ID {
		t.Errorf("faults = %+v, %v", fs, err)
	}
	if s, err := c.Snapshot(ctx); err != nil || len(s.Faults) != 1 {
		t.Errorf("snapshot faults = %+v, %v", s.Faults, err)
	}
	if err := c.RemoveFault(ctx, "99"); err == nil || !strings.Contains(err.Error(), "no active fault 99") {
		t.Errorf("rm of an unknown id = %v", err)
	}
	if n, err := c.ClearFaults(ctx); err != nil || n != 1 {
		t.Errorf("clear = %d, %v; want 1 removed", n, err)
	}
	if fs, _ := c.Faults(ctx); len(fs) != 0 {
		t.Errorf("faults after clear: %+v", fs)
	}
}

// otherRuntime is a runtime that is neither local nor a runtime.ChaosHost:
// startChaos looks at nothing else.
type otherRuntime struct{ runtime.Runtime }

func (otherRuntime) Name() string { return "other" }

func TestChaosWithoutProxiesSaysWhy(t *testing.T) {
	a := startIdle(t)
	ctl, router, err := startChaos(t.Context(), otherRuntime{}, a.m, nil)
	if ctl != nil || router != nil || !errors.Is(err, runtime.ErrChaosUnavailable) {
		t.Fatalf("startChaos on a runtime without proxies = %v, %v, %v; want ErrChaosUnavailable", ctl, router, err)
	}
	mux := http.NewServeMux()
	(&Agent{chaosErr: err}).chaosRoutes(mux)
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/api/chaos", nil),
		httptest.NewRequest(http.MethodPost, "/api/chaos", strings.NewReader(`{"from":"echo","to":"nats","down":true}`)),
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "runs no chaos proxy") {
			t.Errorf("%s %s without proxies: %d %s", r.Method, r.URL, w.Code, w.Body)
		}
	}
}
