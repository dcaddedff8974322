package scaffold

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/msctl/msctl/internal/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const fixtureManifest = `# a small shop
project: shop

gateway:
  port: 8080            # fixed

services:
  users:
    path: services/users
    language: go
    database: true
    routes:
      /api/v1/auth: public   # signup and login
  gateway:
    path: services/gateway
    language: go
    public: true
    depends_on: [users]
`

// workspace builds a workspace of two services in a temporary directory.
func workspace(t *testing.T) *manifest.Manifest {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":                   "module example.com/shop\n\ngo 1.26\n",
		manifest.FileName:          fixtureManifest,
		"services/users/main.go":   "package main\n",
		"services/gateway/main.go": "package main\n",
	}
	// The workspace's own kit/events names the streams in generated code.
	kitEvents, err := os.ReadFile(filepath.Join("..", "services", "kit", "events", "events.go"))
	if err != nil {
		t.Fatal(err)
	}
	files["services/kit/events/events.go"] = string(kitEvents)
	for p, data := range files {
		p = filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := manifest.Load(filepath.Join(dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// snapshot reads every file and directory under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, data := range before {
		if got, ok := after[p]; !ok {
			t.Errorf("%s is gone", p)
		} else if got != data {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s was left behind", p)
		}
	}
}

// goldenCases are the variants whose renderings are kept in testdata/golden;
// TestGeneratedVariants (e2e_test.go) builds, vets and tests each of them
// in a copy of the repository, so between them they must cover every
// option. ManifestPath and Lang are filled in by the tests.
var goldenCases = []struct {
	name string
	opts Options
}{
	// No database: the memory adapter, internal endpoints only.
	{"minimal", Options{Name: "hello"}},
	{"public-memory", Options{Name: "catalog-api", Route: "/api/v1/catalog", Public: true}},
	{"full", Options{
		Name: "shipping", DB: true, Route: "/api/v1/shipping",
		Consumes: []string{"OrderConfirmed", "payments.cmd.charge"}, Publishes: []string{"OrderCreated"},
		Depends: []string{"users"}, Port: 9100,
	}},
}

func TestGolden(t *testing.T) {
	for _, tt := range goldenCases {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.ManifestPath, opts.Lang = workspace(t).Path(), "go"
			p, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			ar := &txtar.Archive{Comment: []byte("TestGolden case " + tt.name + ": the rendered files and the new manifest.\nRegenerate with go test ./scaffold -run TestGolden -update\n")}
			for _, f := range p.Files {
				ar.Files = append(ar.Files, txtar.File{Name: f.Path, Data: f.Data})
			}
			ar.Files = append(ar.Files, txtar.File{Name: manifest.FileName, Data: p.Manifest})
			got := txtar.Format(ar)
			golden := filepath.Join("testdata", "golden", tt.name+".txtar")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("rendering differs from %s (run with -update after checking the change)", golden)
				diffFiles(t, txtar.Parse(want), ar)
			}
		})
	}
}

func diffFiles(t *testing.T, want, got *txtar.Archive) {
	t.Helper()
	w := map[string]string{}
	for _, f := range want.Files {
		w[f.Name] = string(f.Data)
	}
	for _, f := range got.Files {
		if old, ok := w[f.Name]; !ok {
			t.Errorf("new file %s", f.Name)
		} else if old != string(f.Data) {
			t.Errorf("%s differs:\n%s", f.Name, f.Data)
		}
		delete(w, f.Name)
	}
	for name := range w {
		t.Errorf("file %s is no longer rendered", name)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		prepare func(t *testing.T, root string)
		want    string
	}{
		{name: "upper case", opts: Options{Name: "Shipping"}, want: `service name "Shipping" is not a valid name`},
		{name: "leading digit", opts: Options{Name: "1st"}, want: "is not a valid name"},
		{name: "in manifest", opts: Options{Name: "users"}, want: `service "users" already exists in msctl.yaml`},
		{name: "directory exists", opts: Options{Name: "shipping"}, prepare: func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, "services", "shipping"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, want: "services/shipping already exists"},
		{name: "contract file exists", opts: Options{Name: "shipping", Route: "/api/v1/shipping"}, prepare: func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, "contracts"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "contracts", "provider_shipping_test.go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "contracts/provider_shipping_test.go already exists"},
		{name: "route taken", opts: Options{Name: "shipping", Route: "/api/v1/auth"}, want: `route /api/v1/auth is already taken by service "users"`},
		{name: "route trailing slash", opts: Options{Name: "shipping", Route: "/api/v1/shipping/"}, want: `route "/api/v1/shipping/" is not a path prefix`},
		{name: "route under a taken one", opts: Options{Name: "shipping", Route: "/api/v1/auth/x"}, want: `route /api/v1/auth/x lies under /api/v1/auth of service "users"`},
		{name: "route deep under a taken one", opts: Options{Name: "shipping", Route: "/api/v1/auth/a/b"}, want: `lies under /api/v1/auth of service "users"`},
		{name: "route around a taken one", opts: Options{Name: "shipping", Route: "/api/v1"}, want: `route /api/v1 contains /api/v1/auth of service "users"`},
		{name: "route around at the top", opts: Options{Name: "shipping", Route: "/api"}, want: `route /api contains /api/v1/auth of service "users"`},
		{name: "route relative", opts: Options{Name: "shipping", Route: "api/v1/shipping"}, want: "is not a path prefix"},
		{name: "route root", opts: Options{Name: "shipping", Route: "/"}, want: `route "/" is not a path prefix`},
		{name: "route empty segment", opts: Options{Name: "shipping", Route: "/api//shipping"}, want: "is not a path prefix"},
		{name: "route dot segment", opts: Options{Name: "shipping", Route: "/api/v1/../shipping"}, want: "is not a path prefix"},
		{name: "route escape", opts: Options{Name: "shipping", Route: "/api/v1/ship%20ping"}, want: "is not a path prefix"},
		{name: "route pattern", opts: Options{Name: "shipping", Route: "/api/v1/{id}"}, want: "is not a path prefix"},
		{name: "route query", opts: Options{Name: "shipping", Route: "/api/v1/shipping?x=1"}, want: "is not a path prefix"},
		{name: "internal route", opts: Options{Name: "shipping", Route: "/internal/shipping"}, want: "is internal"},
		{name: "internal root", opts: Options{Name: "shipping", Route: "/internal"}, want: "route /internal is internal"},
		{name: "public without route", opts: Options{Name: "shipping", Public: true}, want: "--public needs --route"},
		{name: "unknown dependency", opts: Options{Name: "shipping", Depends: []string{"billing"}}, want: `dependency "billing" is not a service`},
		{name: "unknown consumed event", opts: Options{Name: "shipping", Consumes: []string{"OrderShipped"}}, want: `--consumes: unknown event "OrderShipped"`},
		{name: "unknown published event", opts: Options{Name: "shipping", Publishes: []string{"x"}}, want: `--publishes: unknown event "x"`},
		{name: "port taken", opts: Options{Name: "shipping", Port: 8080}, want: "port 8080 is already used by gateway.port"},
		{name: "port out of range", opts: Options{Name: "shipping", Port: 70000}, want: "out of range"},
		{name: "unknown language", opts: Options{Name: "shipping", Lang: "node"}, want: `no template set for language "node"`},
		{name: "no go.mod", opts: Options{Name: "shipping"}, prepare: func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "go.mod")); err != nil {
				t.Fatal(err)
			}
		}, want: "no go.mod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			m := workspace(t)
			opts.ManifestPath = m.Path()
			if opts.Lang == "" {
				opts.Lang = "go"
			}
			if tt.prepare != nil {
				tt.prepare(t, m.Dir())
			}
			_, err := New(opts)
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if !strings.Contains(r.Msg, tt.want) || r.Fix == "" {
				t.Fatalf("refusal = %q (fix %q), want it to contain %q and a fix", r.Msg, r.Fix, tt.want)
			}
		})
	}
}

// TestRoutesBesideTaken: prefixes that share characters but not whole
// segments with a taken route, or live elsewhere, are accepted.
func TestRoutesBesideTaken(t *testing.T) {
	for _, route := range []string{"/api/v1/authz", "/api/v1/aut", "/api/v2/auth", "/auth", "/internalx", "/api/v1/ship.ping~x_y"} {
		t.Run(route, func(t *testing.T) {
			p, err := New(Options{ManifestPath: workspace(t).Path(), Lang: "go", Name: "shipping", Route: route})
			if err != nil {
				t.Fatal(err)
			}
			if p.Route != route {
				t.Fatalf("planned route %q, want %q", p.Route, route)
			}
		})
	}
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		r, taken string
		want     int
	}{
		{"/api/v1/shipping", "/api/v1/shipping", sameRoute},
		{"/api/v1/shipping", "/api/v1/shipping/", sameRoute},
		{"/api/v1/ship", "/api/v1/shipping", disjointRoute},
		{"/api/v1/shipping", "/api/v1/ship", disjointRoute},
		{"/api/v1/shipping/x", "/api/v1/shipping", underRoute},
		{"/api/v1/shipping/x", "/api/v1/shipping/", underRoute},
		{"/api/v1", "/api/v1/shipping", aroundRoute},
		{"/api/v1", "/api/v1/shipping/", aroundRoute},
		{"/api/v1/x", "/", underRoute},
		{"/api/v2", "/api/v1/shipping", disjointRoute},
	}
	for _, tt := range tests {
		if got := overlap(tt.r, tt.taken); got != tt.want {
			t.Errorf("overlap(%q, %q) = %d, want %d", tt.r, tt.taken, got, tt.want)
		}
	}
}

func TestApply(t *testing.T) {
	m := workspace(t)
	p, err := New(Options{ManifestPath: m.Path(), Lang: "go", Name: "shipping", Route: "/api/v1/shipping", Consumes: []string{"OrderConfirmed"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, m.Dir())
	for _, f := range p.Files {
		if after[filepath.FromSlash(f.Path)] != string(f.Data) {
			t.Errorf("%s not written as planned", f.Path)
		}
	}
	if after[manifest.FileName] != string(p.Manifest) {
		t.Errorf("manifest not written as planned")
	}
	for name := range after {
		if strings.HasPrefix(name, ".msctl-new") {
			t.Errorf("staging left behind: %s", name)
		}
	}
	got, err := manifest.Load(p.ManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	s := got.Services["shipping"]
	if s == nil || !s.Database || s.Routes["/api/v1/shipping"] != manifest.AccessAuth {
		t.Fatalf("loaded service = %+v", s)
	}
}

// TestApplyAllOrNothing fails Apply after each of its steps in turn and
// checks the workspace is exactly as before.
func TestApplyAllOrNothing(t *testing.T) {
	steps := []string{
		"staged",
		"moved services/shipping",
		"moved contracts/consumer_gateway_shipping_test.go",
		"moved contracts/provider_shipping_test.go",
		"manifest",
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			m := workspace(t)
			before := snapshot(t, m.Dir())
			p, err := New(Options{ManifestPath: m.Path(), Lang: "go", Name: "shipping", DB: true, Route: "/api/v1/shipping"})
			if err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected failure")
			reached := false
			p.hook = func(s string) error {
				if s == step {
					reached = true
					return injected
				}
				return nil
			}
			if err := p.Apply(); !errors.Is(err, injected) {
				t.Fatalf("Apply = %v, want the injected failure", err)
			}
			if !reached {
				t.Fatalf("step %q never ran", step)
			}
			sameTree(t, before, snapshot(t, m.Dir()))
		})
	}
}
