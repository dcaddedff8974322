// Package watch follows a workspace's sources with fsnotify and says,
// once edits have settled, which services they affect: the services whose
// directory changed, the Go services importing a changed shared package
// (transitively), every Go service of a module whose go.mod or go.sum
// changed, and whether msctl.yaml changed. It builds and restarts
// nothing: its owner (the agent) hands each Batch to the reconcile.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultQuiet is how long no change must arrive before a batch is
// handed on: an editor's save (a temp file, a rename, a chmod) and a
// checkout of many files arrive as one batch.
const DefaultQuiet = 300 * time.Millisecond

// maxDelay bounds how long a stream of changes that never pauses (a
// generator rewriting files in a loop) holds a batch back.
const maxDelay = 5 * time.Second

// Options configure a Watcher.
type Options struct {
	// Root is the workspace directory: its .gitignore applies, and
	// Manifest is the msctl.yaml in it.
	Root, Manifest string
	Services       []Service
	// Quiet is the debounce; zero is DefaultQuiet.
	Quiet time.Duration
	Log   *slog.Logger
}

// Batch is what one settled burst of changes affects.
type Batch struct {
	Services []string // sorted
	Manifest bool     // msctl.yaml changed
	Paths    []string // the changed paths, sorted
}

// Empty reports whether the batch affects nothing.
func (b Batch) Empty() bool { return len(b.Services) == 0 && !b.Manifest }

// Watcher follows a workspace's sources.
type Watcher struct {
	opts   Options
	ignore *Ignore
	fsw    *fsnotify.Watcher
	graph  *Graph
	// watched holds the directories added to fsw; trees are watched with
	// every subdirectory, roots alone.
	watched map[string]bool
}

// New sets up the watches: every service's directory and every shared
// package a Go service imports, recursively, the module roots and the
// workspace root for go.mod, go.sum and msctl.yaml.
func New(ctx context.Context, opts Options) (*Watcher, error) {
	if opts.Quiet == 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ig, err := NewIgnore(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("read .gitignore: %w", err)
	}
	g, err := LoadGraph(ctx, opts.Services)
	if err != nil {
		return nil, err
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &Watcher{opts: opts, ignore: ig, fsw: fsw, graph: g, watched: map[string]bool{}}
	if err := w.addAll(); err != nil {
		fsw.Close()
		return nil, err
	}
	return w, nil
}

// addAll watches what the graph names, and the workspace root.
func (w *Watcher) addAll() error {
	trees, roots := w.graph.Dirs()
	for _, d := range append(roots, filepath.Dir(w.opts.Manifest)) {
		if err := w.add(d); err != nil {
			return err
		}
	}
	for _, d := range trees {
		if _, err := w.addTree(d); err != nil {
			return err
		}
	}
	return nil
}

func (w *Watcher) add(dir string) error {
	if w.watched[dir] {
		return nil
	}
	if err := w.fsw.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	w.watched[dir] = true
	return nil
}

// addTree watches dir and its subdirectories that are not ignored, and
// returns the files found in directories that were not watched yet: a
// directory created (or moved in) with files in it reports no event for
// them.
func (w *Watcher) addTree(dir string) ([]string, error) {
	var files []string
	fresh := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone meanwhile
			}
			return err
		}
		if !d.IsDir() {
			// Files of a directory watched before raised their own events.
			if fresh[filepath.Dir(p)] && !w.ignore.Ignored(p, false) {
				files = append(files, p)
			}
			return nil
		}
		if p != dir && w.ignore.Ignored(p, true) {
			return filepath.SkipDir
		}
		if w.watched[p] {
			return nil
		}
		fresh[p] = true
		return w.add(p)
	})
	return files, err
}

// Close stops watching.
func (w *Watcher) Close() error { return w.fsw.Close() }

// Run hands each settled batch of changes to handle, one at a time, until
// ctx ends. Changes arriving while handle runs make the next batch. After
// each batch the import graph is read again, so that an import added by
// the edit is followed from then on.
func (w *Watcher) Run(ctx context.Context, handle func(Batch)) error {
	defer w.fsw.Close()
	pending := map[string]bool{}
	var quiet, deadline <-chan time.Time
	var first time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return nil
			}
			for _, p := range w.event(ev) {
				pending[p] = true
			}
			if len(pending) == 0 {
				continue
			}
			if first.IsZero() {
				first = time.Now()
				deadline = time.After(maxDelay)
			}
			quiet = time.After(w.opts.Quiet)
			continue
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			// An overflowed queue lost events: say so, the next edit is
			// seen again.
			w.opts.Log.Warn("watch", "err", err)
			continue
		case <-quiet:
		case <-deadline:
		}
		b := w.batch(pending)
		clear(pending)
		quiet, deadline, first = nil, nil, time.Time{}
		if b.Empty() {
			continue
		}
		handle(b)
		w.refresh(ctx)
	}
}

// event returns the paths one fsnotify event changed that count: a new
// directory is watched and its files count as created.
func (w *Watcher) event(ev fsnotify.Event) []string {
	if ev.Op == fsnotify.Chmod {
		return nil
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// fsnotify drops the watch of a removed directory: one created
		// again under that name must be added again.
		for d := range w.watched {
			if within(d, ev.Name) {
				delete(w.watched, d)
			}
		}
	}
	fi, err := os.Lstat(ev.Name)
	isDir := err == nil && fi.IsDir()
	// .env files are gitignored (they hold secrets) but are inputs all
	// the same: the environment of `up --env`.
	if w.ignore.Ignored(ev.Name, isDir) && (isDir || !isEnvFile(ev.Name)) {
		return nil
	}
	if isDir && ev.Has(fsnotify.Create) && w.underTree(ev.Name) {
		files, err := w.addTree(ev.Name)
		if err != nil {
			w.opts.Log.Warn("watch new directory", "dir", ev.Name, "err", err)
		}
		return append(files, ev.Name)
	}
	if isDir {
		return nil
	}
	return []string{ev.Name}
}

// underTree reports whether dir lies in a recursively watched tree (and
// not merely in a root watched for its own files).
func (w *Watcher) underTree(dir string) bool {
	trees, _ := w.graph.Dirs()
	for _, t := range trees {
		if within(dir, t) {
			return true
		}
	}
	return false
}

// batch maps the pending paths to what they affect.
func (w *Watcher) batch(pending map[string]bool) Batch {
	var b Batch
	for p := range pending {
		b.Paths = append(b.Paths, p)
		// The workspace's own .env files are every service's environment:
		// reconciled like msctl.yaml (a service's own .env files are
		// inputs of that service, below).
		if p == w.opts.Manifest || isEnvFile(p) && filepath.Dir(p) == filepath.Dir(w.opts.Manifest) {
			b.Manifest = true
		}
		for _, s := range w.graph.Affected(p) {
			if !slices.Contains(b.Services, s) {
				b.Services = append(b.Services, s)
			}
		}
	}
	slices.Sort(b.Paths)
	slices.Sort(b.Services)
	return b
}

// refresh reads the import graph again and watches what it adds. A
// failure keeps the old graph: the next batch tries again.
func (w *Watcher) refresh(ctx context.Context) {
	g, err := LoadGraph(ctx, w.opts.Services)
	if err != nil {
		w.opts.Log.Warn("watch: read imports", "err", err)
		return
	}
	w.graph = g
	if err := w.addAll(); err != nil {
		w.opts.Log.Warn("watch", "err", err)
	}
}

// isEnvFile reports whether p is a dotenv file `up --env` reads: .env or
// .env.NAME.
func isEnvFile(p string) bool {
	base := filepath.Base(p)
	return base == ".env" || strings.HasPrefix(base, ".env.")
}
