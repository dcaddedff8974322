package watch

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
)

func TestIgnore(t *testing.T) {
	root := t.TempDir()
	testenv.WriteFiles(t, root, map[string]string{".gitignore": `# comment
/dist/
*.log
!keep.log
generated/**
**/gen/
docs/*.html
tmp?/
\#literal
`})
	ig, err := NewIgnore(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		dir  bool
		want bool
	}{
		{"services/a/main.go", false, false},
		{"dist", true, true},
		{"dist/a/b.go", false, true},
		{"services/a/dist", true, false}, // anchored to the root
		{"services/a/x.log", false, true},
		{"services/a/keep.log", false, false}, // negated
		{"generated/x/y.go", false, true},
		{"services/a/generated/x/y.go", false, false}, // a slash anchors
		{"services/a/gen/x.go", false, true},
		{"docs/a.html", false, true},
		{"docs/sub/a.html", false, false}, // * stays in one segment
		{"tmp1", true, true},
		{"tmp1", false, false}, // dir-only pattern
		{"#literal", false, true},
		{".msctl/bin/users", false, true},
		{"services/a/bin", true, true},
		{"services/web/node_modules/x/index.js", false, true},
		{".git/index", false, true},
		{"services/a/.main.go.swp", false, true},
		{"services/a/main.go~", false, true},
		{"services/a/4913", false, true},
		{"services/a/.#main.go", false, true},
		{"services/a/#main.go#", false, true},
		{"services/a/main.go___jb_tmp___", false, true},
		{filepath.Join(root, "services/a/x.log"), false, true},
		{filepath.Join(root, "services/a/handler.go"), false, false},
		{"/elsewhere/kit/x.go", false, false}, // outside the root: built-in rules only
		{"/elsewhere/kit/bin/x", false, true},
	} {
		if got := ig.Ignored(c.path, c.dir); got != c.want {
			t.Errorf("Ignored(%q, dir=%v) = %v, want %v", c.path, c.dir, got, c.want)
		}
	}
}

func TestIgnoreWithoutGitignore(t *testing.T) {
	ig, err := NewIgnore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ig.Ignored("services/a/main.go", false) || !ig.Ignored("services/a/.msctl/x", false) {
		t.Fatal("without a .gitignore only the built-in rules apply")
	}
}

// module writes a Go module with three services and shared packages:
// kit/y imports kit/x; a imports kit/y, c imports kit/x, b nothing shared;
// kit/z is imported by nobody.
func module(t *testing.T) (string, []Service) {
	t.Helper()
	root := t.TempDir()
	main := func(imp string) string {
		if imp == "" {
			return "package main\n\nfunc main() {}\n"
		}
		return "package main\n\nimport _ \"example.com/ws/" + imp + "\"\n\nfunc main() {}\n"
	}
	testenv.WriteFiles(t, root, map[string]string{
		"go.mod":                   "module example.com/ws\n\ngo 1.22\n",
		"msctl.yaml":               "project: ws\n",
		"services/kit/x/x.go":      "package x\n",
		"services/kit/x/x_test.go": "package x\n",
		"services/kit/y/y.go":      "package y\n\nimport _ \"example.com/ws/services/kit/x\"\n",
		"services/kit/z/z.go":      "package z\n",
		"services/a/main.go":       main("services/kit/y"),
		"services/a/sub/h.go":      "package sub\n",
		"services/b/main.go":       main(""),
		"services/c/main.go":       main("services/kit/x"),
	})
	var svcs []Service
	for _, n := range []string{"a", "b", "c"} {
		svcs = append(svcs, Service{Name: n, Dir: filepath.Join(root, "services", n), Go: true})
	}
	return root, svcs
}

func TestGraphAffected(t *testing.T) {
	root, svcs := module(t)
	g, err := LoadGraph(context.Background(), svcs)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]string{
		"services/a/main.go":       {"a"},
		"services/a/sub/h.go":      {"a"},
		"services/a/new/file.go":   {"a"},
		"services/b/main.go":       {"b"},
		"services/kit/x/x.go":      {"a", "c"}, // a through kit/y
		"services/kit/x/new.go":    {"a", "c"},
		"services/kit/x/x_test.go": nil,
		"services/kit/y/y.go":      {"a"},
		"services/kit/z/z.go":      nil,
		"go.mod":                   {"a", "b", "c"},
		"go.sum":                   {"a", "b", "c"},
		"msctl.yaml":               nil,
		"README.md":                nil,
	} {
		if got := g.Affected(filepath.Join(root, path)); !reflect.DeepEqual(got, want) {
			t.Errorf("Affected(%s) = %v, want %v", path, got, want)
		}
	}
}

// TestWatcher edits a real directory tree and checks the batches: one per
// settled burst, ignored paths and editor temp files left out, a new
// directory's files seen, shared code mapped to its importers.
func TestWatcher(t *testing.T) {
	root, svcs := module(t)
	testenv.WriteFiles(t, root, map[string]string{".gitignore": "*.gen.go\n.env\n.env.*\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Quiet is generous: a busy machine (CI runs packages in parallel) can
	// pause the burst of writes below for longer than a short one, and
	// split it.
	const quiet = time.Second
	w, err := New(ctx, Options{Root: root, Manifest: filepath.Join(root, "msctl.yaml"), Services: svcs, Quiet: quiet})
	if err != nil {
		t.Fatal(err)
	}
	batches := make(chan Batch, 10)
	done := make(chan error)
	go func() { done <- w.Run(ctx, func(b Batch) { batches <- b }) }()

	next := func(what string) Batch {
		t.Helper()
		select {
		case b := <-batches:
			return b
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no batch", what)
			return Batch{}
		}
	}
	none := func(what string) {
		t.Helper()
		select {
		case b := <-batches:
			t.Fatalf("%s: unexpected batch %+v", what, b)
		case <-time.After(quiet + 500*time.Millisecond):
		}
	}
	write := func(rel, text string) {
		t.Helper()
		testenv.WriteFiles(t, root, map[string]string{rel: text})
	}

	// A burst of saves (with an editor's swap file) is one batch.
	for range 5 {
		write("services/b/main.go", "package main\n\nfunc main() { println() }\n")
		write("services/b/.main.go.swp", "x")
	}
	if b := next("edit b"); !reflect.DeepEqual(b.Services, []string{"b"}) || b.Manifest || len(b.Paths) != 1 {
		t.Fatalf("edit b: %+v", b)
	}
	none("after the burst")

	write("services/a/x.gen.go", "package main\n")
	write("services/a/bin/a", "binary")
	write(".msctl/agent.log", "x")
	none("ignored paths")

	// A shared package's importers, transitively.
	write("services/kit/x/x.go", "package x\n\nconst X = 1\n")
	if b := next("kit/x"); !reflect.DeepEqual(b.Services, []string{"a", "c"}) {
		t.Fatalf("kit/x: %+v", b)
	}

	// A new directory, created with a file already in it, is watched.
	if err := os.MkdirAll(filepath.Join(root, "services/c/api/v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("services/c/api/v2/h.go", "package v2\n")
	if b := next("new dir"); !reflect.DeepEqual(b.Services, []string{"c"}) {
		t.Fatalf("new dir: %+v", b)
	}
	write("services/c/api/v2/h.go", "package v2\n\nconst Y = 2\n")
	if b := next("file in new dir"); !reflect.DeepEqual(b.Paths, []string{filepath.Join(root, "services/c/api/v2/h.go")}) {
		t.Fatalf("file in new dir: %+v", b)
	}

	write("msctl.yaml", "project: ws\n# edited\n")
	if b := next("manifest"); !b.Manifest || len(b.Services) != 0 {
		t.Fatalf("manifest: %+v", b)
	}
	// .env files are ignored by git but not by watch: the workspace's
	// reconcile everything, a service's its service.
	write(".env.test", "A=1\n")
	if b := next("workspace .env"); !b.Manifest || len(b.Services) != 0 {
		t.Fatalf("workspace .env: %+v", b)
	}
	write("services/b/.env", "B=1\n")
	if b := next("service .env"); !reflect.DeepEqual(b.Services, []string{"b"}) || b.Manifest {
		t.Fatalf("service .env: %+v", b)
	}
	write("go.sum", "")
	if b := next("go.sum"); !reflect.DeepEqual(b.Services, []string{"a", "b", "c"}) {
		t.Fatalf("go.sum: %+v", b)
	}

	// An import added by an edit is followed from the next batch on.
	write("services/b/main.go", "package main\n\nimport _ \"example.com/ws/services/kit/z\"\n\nfunc main() {}\n")
	next("b imports kit/z")
	write("services/kit/z/z.go", "package z\n\nconst Z = 3\n")
	if b := next("kit/z"); !reflect.DeepEqual(b.Services, []string{"b"}) {
		t.Fatalf("kit/z after b imports it: %+v", b)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
