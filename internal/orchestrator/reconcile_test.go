package orchestrator

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// idRuntime is the fake runtime with builds that name their output, as
// the docker runtime's image tags do: ids[service], "v1" by default.
type idRuntime struct {
	*fakeRuntime
	mu  sync.Mutex
	ids map[string]string
}

func (r *idRuntime) Build(ctx context.Context, specs []runtime.BuildSpec, progress func(runtime.BuildEvent)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range specs {
		id := r.ids[s.Name]
		if id == "" {
			id = "v1"
		}
		progress(runtime.BuildEvent{Service: s.Name, Done: true, Cached: true, ID: id})
	}
	return nil
}

func newIDOrch(t *testing.T) (*idRuntime, *Orchestrator) {
	t.Helper()
	f := &idRuntime{fakeRuntime: newFake(), ids: map[string]string{}}
	o, err := New(Options{
		Manifest: loadShop(t), Runtime: f, OTLPAddr: "127.0.0.1:4318", Probe: f.probe,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, ReadyTimeout: 5 * time.Second, Grace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Down(context.Background(), DownOptions{}) })
	return f, o
}

// rewrite writes the shop's manifest with edit applied and loads it.
func rewrite(t *testing.T, o *Orchestrator, edit func(string) string) *manifest.Manifest {
	t.Helper()
	if err := os.WriteFile(o.opts.Manifest.Path(), []byte(edit(shopYAML)), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(o.opts.Manifest.Path())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func starts(evs []string) []string {
	var out []string
	for _, e := range evs {
		if s, ok := strings.CutPrefix(e, "start "); ok {
			out = append(out, s)
		}
	}
	return out
}

func TestReconcile(t *testing.T) {
	same := func(s string) string { return s }
	tests := []struct {
		name    string
		ids     map[string]string
		edit    func(string) string
		want    []state.Change
		starts  []string // instances started by Reconcile
		wantErr error
	}{
		{name: "nothing changed", edit: same},
		{
			name: "code of one service", ids: map[string]string{"orders": "v2"}, edit: same,
			want: []state.Change{{Service: "orders", What: "code changed, restarted"}}, starts: []string{"orders"},
		},
		{
			name: "env of one service",
			edit: func(s string) string {
				return strings.Replace(s, "  inventory:\n    database: true\n", "  inventory:\n    database: true\n    env: {STOCK_MODE: strict}\n", 1)
			},
			want: []state.Change{{Service: "inventory", What: "env changed, restarted"}}, starts: []string{"inventory"},
		},
		{
			name: "more replicas",
			edit: func(s string) string {
				return strings.Replace(s, "  orders:\n", "  orders:\n    replicas: 3\n", 1)
			},
			want: []state.Change{{Service: "orders", What: "scaled 1 → 3"}}, starts: []string{"orders", "orders"},
		},
		{
			name:    "a service added",
			edit:    func(s string) string { return s + "  extra:\n    path: services/users\n" },
			wantErr: ErrRestartNeeded,
		},
		{
			name: "a dependency changed",
			edit: func(s string) string {
				return strings.Replace(s, "depends_on: [inventory, users]", "depends_on: [inventory]", 1)
			},
			wantErr: ErrRestartNeeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, o := newIDOrch(t)
			if err := o.Up(t.Context(), UpOptions{}); err != nil {
				t.Fatal(err)
			}
			before := len(f.events())
			f.mu.Lock()
			maps.Copy(f.ids, tt.ids)
			f.mu.Unlock()
			got, err := o.Reconcile(t.Context(), rewrite(t, o, tt.edit), nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Reconcile error = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("changes = %v, want %v", got, tt.want)
			}
			if s := starts(f.events()[before:]); !slices.Equal(s, tt.starts) {
				t.Errorf("started %v, want %v", s, tt.starts)
			}
			// A second Reconcile of the same state changes nothing.
			if tt.wantErr == nil {
				again, err := o.Reconcile(t.Context(), rewrite(t, o, tt.edit), nil)
				if err != nil || len(again) != 0 {
					t.Errorf("second Reconcile = %v, %v; want no changes", again, err)
				}
			}
		})
	}
}

func TestReconcileEnvReachesNewInstances(t *testing.T) {
	f, o := newIDOrch(t)
	if err := o.Up(t.Context(), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	m := rewrite(t, o, func(s string) string {
		return strings.Replace(s, "  users:\n    database: true\n", "  users:\n    database: true\n    env: {TOKEN_TTL: 1h}\n", 1)
	})
	if _, err := o.Reconcile(t.Context(), m, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.current("users").spec.Env["TOKEN_TTL"]; got != "1h" {
		t.Errorf("TOKEN_TTL of the new users instance = %q, want 1h", got)
	}
}

func TestReconcileFewerReplicasStopsExtras(t *testing.T) {
	f, o := newIDOrch(t)
	three := func(s string) string { return strings.Replace(s, "  orders:\n", "  orders:\n    replicas: 3\n", 1) }
	if _, err := o.Reconcile(t.Context(), rewrite(t, o, three), nil); err == nil {
		t.Fatal("Reconcile before Up succeeded")
	}
	if err := o.Up(t.Context(), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Reconcile(t.Context(), rewrite(t, o, three), nil); err != nil {
		t.Fatal(err)
	}
	before := len(f.events())
	got, err := o.Reconcile(t.Context(), rewrite(t, o, func(s string) string { return s }), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []state.Change{{Service: "orders", What: "scaled 3 → 1"}}; !slices.Equal(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
	evs := f.events()[before:]
	if n := strings.Count(strings.Join(evs, "\n"), "stop orders"); n != 2 || len(starts(evs)) != 0 {
		t.Errorf("events = %v, want two orders instances stopped and nothing started", evs)
	}
	for _, c := range o.Ps() {
		if c.Name == "orders" && c.Instances != 1 {
			t.Errorf("orders has %d instances, want 1", c.Instances)
		}
	}
}
