package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/gobuild"
)

// Build compiles Go services into .msctl/bin/<name>. A service whose
// source key (see gobuild.Keyer) matches the one recorded beside its binary
// is not handed to the toolchain at all: even a fully cached `go build`
// of a module with this many dependencies takes a second or more, most
// of a warm `msctl up`. The others of one Go module are built by a single
// `go build` (it shares package loading and compiles in parallel); modules
// build in parallel with each other. Node services need no build.
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
		root, err := gobuild.ModuleRoot(s.Dir)
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
	keys := map[string]string{}
	var stale []runtime.BuildSpec
	kr := gobuild.NewKeyer(root, slices.Concat(buildEnv, buildFlags)...)
	for _, s := range group {
		key, err := kr.Key(s.Dir)
		if err != nil {
			// Not knowing the inputs only costs the shortcut.
			r.log.Debug("no source key, leaving it to go build", "service", s.Name, "err", err)
		}
		if key != "" && readKey(r.keyPath(s.Name)) == stamp(key, r.binPath(s.Name)) {
			r.setBuilt(s)
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Cached: true})
			continue
		}
		keys[s.Name] = key
		stale = append(stale, s)
	}
	if len(stale) == 0 {
		return nil
	}

	before := map[string]string{}
	targets := make([]gobuild.Target, 0, len(stale))
	for _, s := range stale {
		progress(runtime.BuildEvent{Service: s.Name})
		before[s.Name] = fileHash(r.binPath(s.Name))
		// The old key must not vouch for whatever this build leaves behind.
		_ = os.Remove(r.keyPath(s.Name))
		targets = append(targets, gobuild.Target{Name: s.Name, Dir: s.Dir})
	}
	failed := gobuild.Compile(ctx, root, r.binDir(), targets, buildEnv, buildFlags)
	for _, s := range stale {
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
			if k := keys[s.Name]; k != "" {
				if err := os.WriteFile(r.keyPath(s.Name), []byte(stamp(k, r.binPath(s.Name))+"\n"), 0o644); err != nil {
					r.log.Warn("record source key", "service", s.Name, "err", err)
				}
			}
			r.setBuilt(s)
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Cached: after == before[s.Name]})
		}
	}
	return failed
}

// buildEnv is added to the toolchain's environment: services are static
// binaries. buildFlags keep the host's paths out of them.
var (
	buildEnv   = []string{"CGO_ENABLED=0"}
	buildFlags = []string{"-trimpath"}
)

// keyPath is where the source key of a service's binary is recorded.
func (r *Runtime) keyPath(service string) string { return r.binPath(service) + ".key" }

// stamp ties a source key to the binary built from it, by size and
// modification time: a binary replaced or removed behind our back no longer
// matches its recorded key, without reading tens of megabytes to tell.
func stamp(key, bin string) string {
	fi, err := os.Stat(bin)
	if err != nil {
		return "missing"
	}
	return key + " " + strconv.FormatInt(fi.Size(), 10) + " " + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
}

func readKey(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
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
