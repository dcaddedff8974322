package watch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Service is one service the watcher maps changes to.
type Service struct {
	Name string
	Dir  string // absolute
	// Go services also depend on the in-module packages they import and on
	// their module's go.mod and go.sum.
	Go bool
}

// Graph maps a changed path to the services whose build it is an input
// of: a service's own directory, the directories of the in-module
// packages a Go service imports (transitively), and its module's go.mod
// and go.sum.
type Graph struct {
	services []Service
	// deps maps a shared package's directory to the Go services importing
	// it; a service's own directory is not in it.
	deps map[string][]string
	// modFiles maps a go.mod or go.sum to the Go services of that module.
	modFiles map[string][]string
}

// LoadGraph asks the go command which in-module packages each Go service
// imports. A service that does not compile still gets its imports (go
// list -e), so that a broken edit does not lose the mapping.
func LoadGraph(ctx context.Context, services []Service) (*Graph, error) {
	g := &Graph{services: services, deps: map[string][]string{}, modFiles: map[string][]string{}}
	byModule := map[string][]Service{}
	for _, s := range services {
		if !s.Go {
			continue
		}
		root, err := moduleRoot(ctx, s.Dir)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		byModule[root] = append(byModule[root], s)
		for _, f := range []string{"go.mod", "go.sum"} {
			p := filepath.Join(root, f)
			g.modFiles[p] = append(g.modFiles[p], s.Name)
		}
	}
	for root, group := range byModule {
		if err := g.loadModule(ctx, root, group); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// loadModule lists the services of one module with every package they
// import: in-module packages are those whose module is the main one.
func (g *Graph) loadModule(ctx context.Context, root string, group []Service) error {
	args := []string{"list", "-e", "-deps", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{with .Module}}{{.Main}}{{end}}\t{{join .Deps \" \"}}"}
	for _, s := range group {
		args = append(args, s.Dir)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list in %s: %w\n%s", root, err, strings.TrimSpace(stderr.String()))
	}
	type pkg struct {
		dir  string
		main bool
		deps []string
	}
	pkgs := map[string]pkg{}
	byDir := map[string]string{} // directory → import path
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) != 4 {
			continue
		}
		pkgs[f[0]] = pkg{dir: f[1], main: f[2] == "true", deps: strings.Fields(f[3])}
		byDir[f[1]] = f[0]
	}
	for _, s := range group {
		p, ok := pkgs[byDir[s.Dir]]
		if !ok {
			continue // no Go files yet: its own directory still maps to it
		}
		for _, d := range p.deps {
			if dp, ok := pkgs[d]; ok && dp.main && dp.dir != "" && !within(dp.dir, s.Dir) {
				g.deps[dp.dir] = append(g.deps[dp.dir], s.Name)
			}
		}
	}
	return nil
}

// Affected returns the services a change of path p is an input of,
// sorted; nil when it is none's.
func (g *Graph) Affected(p string) []string {
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	for _, s := range g.services {
		if within(p, s.Dir) {
			add(s.Name)
		}
	}
	add(g.modFiles[p]...)
	// Tests of shared packages are no input of any service binary; a
	// service's own tests are only one of itself, and a rebuild that
	// changes nothing restarts nothing.
	if !strings.HasSuffix(p, "_test.go") {
		add(g.deps[filepath.Dir(p)]...)
	}
	slices.Sort(out)
	return out
}

// Dirs returns the directories to watch for g: every service's directory
// and every shared package's, sorted, with the module roots (watched alone,
// for go.mod and go.sum) in roots.
func (g *Graph) Dirs() (trees, roots []string) {
	for _, s := range g.services {
		trees = append(trees, s.Dir)
	}
	for d := range g.deps {
		trees = append(trees, d)
	}
	for f := range g.modFiles {
		if d := filepath.Dir(f); !slices.Contains(roots, d) {
			roots = append(roots, d)
		}
	}
	slices.Sort(trees)
	slices.Sort(roots)
	return slices.Compact(trees), roots
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// moduleRoot is the directory of the go.mod the go command uses in dir.
func moduleRoot(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD in %s: %w", dir, err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("%s is in no Go module: add a go.mod (go mod init)", dir)
	}
	return filepath.Dir(gomod), nil
}
