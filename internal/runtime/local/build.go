package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/msctl/msctl/internal/runtime"
)

// Build compiles Go services into .msctl/bin/<name>. Services of one Go
// module are built by a single `go build` (it shares package loading and
// compiles in parallel); modules build in parallel with each other. Go's
// build cache skips compiling unchanged packages, and `go build -o` leaves
// an up-to-date binary untouched, so a warm build costs little and reports
// Cached. Node services need no build.
func (r *Runtime) Build(ctx context.Context, specs []runtime.BuildSpec, progress func(runtime.BuildEvent)) error {
	if progress == nil {
		progress = func(runtime.BuildEvent) {}
	}
	if err := os.MkdirAll(r.binDir(), 0o755); err != nil {
		return fmt.Errorf("create bin directory: %w", err)
	}
	byModule := map[string][]runtime.BuildSpec{}
	for _, s := range specs {
		switch s.Language {
		case "node":
			r.setBuilt(s)
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Cached: true})
			continue
		case "go", "":
		default:
			err := fmt.Errorf("service %s: language %q is not supported", s.Name, s.Language)
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Err: err})
			return err
		}
		root, err := moduleRoot(s.Dir)
		if err != nil {
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Err: err})
			return fmt.Errorf("build %s: %w", s.Name, err)
		}
		byModule[root] = append(byModule[root], s)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for root, group := range byModule {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.buildModule(ctx, root, group, progress); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Runtime) buildModule(ctx context.Context, root string, group []runtime.BuildSpec, progress func(runtime.BuildEvent)) error {
	// go build -o DIR names each binary after its package directory; build
	// one package per distinct directory name, else a per-service output.
	before := map[string]string{}
	args := []string{"build", "-trimpath", "-o", r.binDir() + string(filepath.Separator)}
	sameName := true
	for _, s := range group {
		progress(runtime.BuildEvent{Service: s.Name})
		before[s.Name] = fileHash(r.binPath(s.Name))
		rel, err := filepath.Rel(root, s.Dir)
		if err != nil {
			return fmt.Errorf("build %s: %w", s.Name, err)
		}
		args = append(args, "./"+filepath.ToSlash(rel))
		sameName = sameName && filepath.Base(s.Dir) == s.Name
	}
	var runs [][]string
	if sameName {
		runs = [][]string{args}
	} else {
		for i, s := range group {
			runs = append(runs, []string{"build", "-trimpath", "-o", r.binPath(s.Name), args[4+i]})
		}
	}
	var failed error
	for _, a := range runs {
		cmd := exec.CommandContext(ctx, "go", a...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			failed = fmt.Errorf("go build in %s: %w\n%s", root, err, strings.TrimSpace(out.String()))
		}
	}
	for _, s := range group {
		after := fileHash(r.binPath(s.Name))
		switch {
		case after == "":
			err := failed
			if err == nil {
				err = fmt.Errorf("go build made no binary for %s", s.Name)
			}
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Err: err})
		case failed != nil:
			// This run failed, maybe because of s: its binary may be stale.
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Err: failed})
		default:
			r.setBuilt(s)
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Cached: after == before[s.Name]})
		}
	}
	if failed != nil {
		return failed
	}
	return nil
}

// fileHash is the SHA-256 of a file, "" when it cannot be read. go build
// refreshes the mtime of an up-to-date binary without relinking it, so
// only the content tells whether anything changed.
func fileHash(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// moduleRoot finds the directory of the go.mod governing dir.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or any parent directory", dir)
		}
	}
}
