package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// builds records what the docker runtime's Build reports: the services it
// compiled (a start event) and the outcome of each.
type builds struct {
	*docker.Runtime
	mu       sync.Mutex
	compiled []string
	done     map[string]runtime.BuildEvent
}

func (b *builds) Build(ctx context.Context, specs []runtime.BuildSpec, progress func(runtime.BuildEvent)) error {
	return b.Runtime.Build(ctx, specs, func(ev runtime.BuildEvent) {
		b.mu.Lock()
		if ev.Done {
			b.done[ev.Service] = ev
		} else {
			b.compiled = append(b.compiled, ev.Service)
		}
		b.mu.Unlock()
		if progress != nil {
			progress(ev)
		}
	})
}

// take returns what was built since the last take, and forgets it.
func (b *builds) take() (compiled []string, done map[string]runtime.BuildEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	compiled, done = b.compiled, b.done
	b.compiled, b.done = nil, map[string]runtime.BuildEvent{}
	slices.Sort(compiled)
	return compiled, done
}

// TestUpBuildsOnlyWhatChanged checks the docker warm path: an up after down
// and an up with nothing changed compile nothing and build no image (every
// service Cached, with the image it had), and a change to one service's
// file compiles and replaces exactly that service.
func TestUpBuildsOnlyWhatChanged(t *testing.T) {
	testenv.RequireDocker(t)
	testenv.SkipShort(t, "brings a docker workspace up")
	project := uniqueProject(t)
	path := twoServiceWorkspace(t, project)
	m, err := manifest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt := &builds{Runtime: newRuntime(t, m), done: map[string]runtime.BuildEvent{}}
	ctx := t.Context()
	up := func() *orchestrator.Orchestrator {
		t.Helper()
		o, err := orchestrator.New(orchestrator.Options{Manifest: m, Runtime: rt, Grace: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Up(ctx, orchestrator.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = o.Down(context.WithoutCancel(ctx), orchestrator.DownOptions{}) })
		return o
	}
	assertNoBuild := func(what string, images map[string]runtime.BuildEvent) {
		t.Helper()
		compiled, done := rt.take()
		if len(compiled) > 0 {
			t.Errorf("%s compiled %v, want nothing", what, compiled)
		}
		for _, svc := range []string{"alpha", "beta"} {
			if ev := done[svc]; !ev.Done || !ev.Cached || ev.ID != images[svc].ID {
				t.Errorf("%s: %s built %+v, want Cached with image %s", what, svc, ev, images[svc].ID)
			}
		}
	}

	cold := up()
	if compiled, _ := rt.take(); !slices.Equal(compiled, []string{"alpha", "beta"}) {
		t.Fatalf("the first up compiled %v, want alpha and beta", compiled)
	}
	if err := cold.Down(ctx, orchestrator.DownOptions{}); err != nil {
		t.Fatal(err)
	}
	images := map[string]runtime.BuildEvent{}
	for _, svc := range []string{"alpha", "beta"} {
		tag, ok := rt.Image(svc)
		if !ok {
			t.Fatalf("no image for %s after the first up", svc)
		}
		images[svc] = runtime.BuildEvent{ID: tag}
	}

	o := up()
	assertNoBuild("an up after down", images)

	start := time.Now()
	changes, err := o.Reconcile(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("an up with nothing changed took %s", time.Since(start))
	if len(changes) > 0 {
		t.Errorf("an up with nothing changed changed %+v", changes)
	}
	assertNoBuild("an up with nothing changed", images)

	main := filepath.Join(filepath.Dir(path), "services", "alpha", "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	write(t, main, string(src)+"\nfunc init() { os.Setenv(\"ECHO_EDITED\", \"1\") }\n")
	changes, err = o.Reconcile(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	compiled, done := rt.take()
	if !slices.Equal(compiled, []string{"alpha"}) {
		t.Errorf("after editing alpha's main.go the up compiled %v, want alpha alone", compiled)
	}
	if ev := done["alpha"]; ev.Cached || ev.Err != nil || ev.ID == images["alpha"].ID {
		t.Errorf("alpha after the edit: %+v, want a new image", ev)
	}
	if ev := done["beta"]; !ev.Cached || ev.ID != images["beta"].ID {
		t.Errorf("beta after alpha's edit: %+v, want Cached with image %s", ev, images["beta"].ID)
	}
	if want := []state.Change{{Service: "alpha", What: "code changed, restarted"}}; !slices.Equal(changes, want) {
		t.Errorf("changes after editing alpha = %+v, want %+v", changes, want)
	}
}

// TestBuildFailsOnlyTheBrokenService checks that a compile error in one
// service fails that service alone, with the compiler's message, while the
// others built in the same go build get their images; and that the broken
// one, once fixed, is then the only one built.
func TestBuildFailsOnlyTheBrokenService(t *testing.T) {
	testenv.RequireDocker(t)
	project := uniqueProject(t)
	path := twoServiceWorkspace(t, project)
	m, err := manifest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt := &builds{Runtime: newRuntime(t, m), done: map[string]runtime.BuildEvent{}}
	var specs []runtime.BuildSpec
	for _, svc := range []string{"alpha", "beta"} {
		specs = append(specs, runtime.BuildSpec{Name: svc, Dir: m.Services[svc].Dir, Language: manifest.LangGo})
	}
	broken := filepath.Join(filepath.Dir(path), "services", "beta", "broken.go")
	write(t, broken, "package main\n\nvar _ = undefinedName\n")
	if err := rt.Build(t.Context(), specs, nil); err == nil || !strings.Contains(err.Error(), "undefinedName") {
		t.Errorf("Build with beta broken = %v, want the compiler's error", err)
	}
	compiled, done := rt.take()
	if !slices.Equal(compiled, []string{"alpha", "beta"}) {
		t.Errorf("compiled %v, want alpha and beta", compiled)
	}
	if ev := done["alpha"]; ev.Err != nil || ev.ID == "" {
		t.Errorf("alpha, built beside a broken beta: %+v, want its image", ev)
	}
	if ev := done["beta"]; ev.Err == nil || !strings.Contains(ev.Err.Error(), "undefinedName") {
		t.Errorf("beta: %+v, want the compiler's error", ev)
	}

	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	if err := rt.Build(t.Context(), specs, nil); err != nil {
		t.Fatal(err)
	}
	if compiled, done = rt.take(); !slices.Equal(compiled, []string{"beta"}) || !done["alpha"].Cached || done["beta"].Err != nil {
		t.Errorf("after fixing beta: compiled %v, done %+v; want beta alone", compiled, done)
	}
}
