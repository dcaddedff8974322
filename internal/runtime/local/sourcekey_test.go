package local

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/internal/runtime"
)

// writeModule lays out a small module: a service importing an in-module
// library, which embeds an asset directory, and an unrelated package.
func writeModule(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"go.mod":                "module example.com/m\n\ngo 1.26\n",
		"go.sum":                "",
		"svc/main.go":           "package main\n\nimport _ \"example.com/m/lib\"\n\nfunc main() {}\n",
		"svc/main_test.go":      "package main\n",
		"svc/README.md":         "svc\n",
		"lib/lib.go":            "package lib\n\nimport (\n\t\"embed\"\n\t_ \"fmt\"\n)\n\n//go:embed sql\nvar SQL embed.FS\n",
		"lib/sql/001_init.sql":  "create table t (id int);\n",
		"lib/sub/sub.go":        "package sub\n",
		"other/other.go":        "package other\n",
		"lib/sql/deep/more.sql": "select 1;\n",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestSourceKey(t *testing.T) {
	tests := []struct {
		name    string
		edit    string // file to change, relative to the module root
		changed bool
	}{
		{"service source", "svc/main.go", true},
		{"service asset", "svc/README.md", true},
		{"imported package", "lib/lib.go", true},
		{"embedded asset", "lib/sql/001_init.sql", true},
		{"nested embedded asset", "lib/sql/deep/more.sql", true},
		{"go.mod", "go.mod", true},
		{"go.sum", "go.sum", true},
		{"service test", "svc/main_test.go", false},
		{"package not imported", "other/other.go", false},
		{"subpackage not imported", "lib/sub/sub.go", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeModule(t)
			svc := filepath.Join(root, "svc")
			before, err := newKeyer(root).key(svc)
			if err != nil || before == "" {
				t.Fatalf("key = %q, %v", before, err)
			}
			p := filepath.Join(root, filepath.FromSlash(tt.edit))
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("\n// edited\n"); err != nil {
				t.Fatal(err)
			}
			f.Close()
			after, err := newKeyer(root).key(svc)
			if err != nil {
				t.Fatal(err)
			}
			if (after != before) != tt.changed {
				t.Errorf("key changed = %v after editing %s, want %v", after != before, tt.edit, tt.changed)
			}
		})
	}
}

func TestSourceKeyRefusesOutsideSources(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, root string)
	}{
		{"go.work", func(t *testing.T, root string) {
			write(t, filepath.Join(root, "go.work"), "go 1.26\n\nuse .\n")
		}},
		{"GOWORK", func(t *testing.T, root string) { t.Setenv("GOWORK", "/elsewhere/go.work") }},
		{"vendor", func(t *testing.T, root string) {
			write(t, filepath.Join(root, "vendor", "modules.txt"), "")
		}},
		{"directory replace", func(t *testing.T, root string) {
			write(t, filepath.Join(root, "go.mod"), "module example.com/m\n\ngo 1.26\n\nreplace example.com/x => ../x\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeModule(t)
			tt.setup(t, root)
			if key, err := newKeyer(root).key(filepath.Join(root, "svc")); err == nil || key != "" {
				t.Errorf("key = %q, %v; want none", key, err)
			}
		})
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSourceKeyGateway(b *testing.B) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := newKeyer(root).key(filepath.Join(root, "services", "gateway")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBuildSkipsUnchanged checks that a rebuild of unchanged sources does
// not run the toolchain (go build would at least refresh the binary's
// mtime) and that an edit of an imported package does.
func TestBuildSkipsUnchanged(t *testing.T) {
	root := writeModule(t)
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
	write(t, filepath.Join(root, "lib", "lib.go"), "package lib\n\nimport \"embed\"\n\n//go:embed sql\nvar SQL embed.FS\n\nvar V = 2\n")
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
