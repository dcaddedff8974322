package orchestrator

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/testenv"
)

// routedRuntime is the fake runtime whose instances are runtime.Routed, as
// kubernetes pods are: each starts out of service until admit.
type routedRuntime struct {
	*fakeRuntime
	mu    sync.Mutex
	insts []*routedInst
}

type routedInst struct {
	*fakeInst
	in atomic.Bool
}

func (i *routedInst) InService() bool { return i.in.Load() }

func (r *routedRuntime) Start(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	inst, err := r.fakeRuntime.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	ri := &routedInst{fakeInst: inst.(*fakeInst)}
	r.mu.Lock()
	r.insts = append(r.insts, ri)
	r.mu.Unlock()
	return ri, nil
}

// admit puts every instance started so far in service.
func (r *routedRuntime) admit() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, i := range r.insts {
		i.in.Store(true)
	}
}

func count(evs []string, ev string) int {
	n := 0
	for _, e := range evs {
		if e == ev {
			n++
		}
	}
	return n
}

// A routed instance whose own probe passes is not ready until the runtime
// routes traffic to it: Up waits, and Restart stops the next old replica
// only once the new one is in service.
func TestRoutedInstanceIsReadyOnlyInService(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{"services/api/main.go": "package main\n"})
	m := testenv.Manifest(t, dir, "project: routed\nservices:\n  api:\n    replicas: 2\n")
	f := &routedRuntime{fakeRuntime: newFake()}
	o, err := New(Options{
		Manifest: m, Runtime: f, OTLPAddr: "127.0.0.1:4318", Probe: f.probe,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, ReadyTimeout: 5 * time.Second, Grace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Down(context.Background(), DownOptions{}) })

	up := make(chan error, 1)
	go func() { up <- o.Up(t.Context(), UpOptions{}) }()
	testenv.Until(t, 5*time.Second, "both replicas started", func() bool { return count(f.events(), "start api") == 2 })
	select {
	case err := <-up:
		t.Fatalf("Up returned (%v) while no replica was in service", err)
	case <-time.After(300 * time.Millisecond):
	}
	for _, c := range o.Ps() {
		if c.Name == "api" && !strings.Contains(c.Health, "not in service") {
			t.Errorf("api's health = %q, want it to say the instance is not in service", c.Health)
		}
	}
	f.admit()
	if err := <-up; err != nil {
		t.Fatal(err)
	}

	restarted := make(chan error, 1)
	go func() { restarted <- o.Restart(t.Context(), "api") }()
	testenv.Until(t, 5*time.Second, "the first replica replaced", func() bool {
		evs := f.events()
		return count(evs, "stop api") == 1 && count(evs, "start api") == 3
	})
	select {
	case err := <-restarted:
		t.Fatalf("Restart returned (%v) while the new replica was not in service", err)
	case <-time.After(300 * time.Millisecond):
	}
	if n := count(f.events(), "stop api"); n != 1 {
		t.Fatalf("%d replicas stopped before the first replacement was in service, want 1", n)
	}
	f.admit()
	testenv.Until(t, 5*time.Second, "the second replica replaced", func() bool { return count(f.events(), "start api") == 4 })
	f.admit()
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if n := count(f.events(), "stop api"); n != 2 {
		t.Errorf("%d replicas stopped, want 2", n)
	}
}
