package local

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/gobuild/gobuildtest"
)

// TestBuildSkipsUnchanged checks that a rebuild of unchanged sources does
// not run the toolchain (go build would at least refresh the binary's
// mtime) and that an edit of an imported package does.
func TestBuildSkipsUnchanged(t *testing.T) {
	root := gobuildtest.Module(t)
	rt, err := New(Options{StateDir: filepath.Join(t.TempDir(), ".msctl")})
	if err != nil {
		t.Fatal(err)
	}
	spec := []runtime.BuildSpec{{Name: "svc", Dir: filepath.Join(root, "svc"), Language: "go"}}
	build := func() (runtime.BuildEvent, os.FileInfo) {
		t.Helper()
		var last runtime.BuildEvent
		if err := rt.Build(t.Context(), spec, func(ev runtime.BuildEvent) { last = ev }); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(rt.binPath("svc"))
		if err != nil {
			t.Fatal(err)
		}
		return last, fi
	}
	_, first := build()
	ev, second := build()
	if !ev.Done || !ev.Cached || !second.ModTime().Equal(first.ModTime()) {
		t.Errorf("unchanged rebuild: %+v, mtime %v -> %v; want Cached without touching the binary", ev, first.ModTime(), second.ModTime())
	}
	gobuildtest.Write(t, filepath.Join(root, "lib", "lib.go"), "package lib\n\nimport \"embed\"\n\n//go:embed sql\nvar SQL embed.FS\n\nvar V = 2\n")
	ev, third := build()
	if !ev.Done || ev.Err != nil || third.ModTime().Equal(second.ModTime()) {
		t.Errorf("rebuild after an edit: %+v, mtime %v -> %v; want go build to run", ev, second.ModTime(), third.ModTime())
	}
	if err := os.Remove(rt.binPath("svc")); err != nil {
		t.Fatal(err)
	}
	if ev, _ := build(); ev.Cached {
		t.Errorf("rebuild after the binary was removed: %+v, want a build", ev)
	}
}
