package scaffold

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/msctl/msctl/internal/manifest"
)

// Apply writes the plan all or nothing. Every file is first written under a
// temporary directory inside the workspace (same file system, so moving is
// a rename); then the service directory and the other files are moved into
// place and the new manifest replaces the old one by rename; finally the
// workspace is loaded again. A failure at any step undoes the steps before
// it, so the workspace is left as it was.
func (p *Plan) Apply() (err error) {
	tmp, err := os.MkdirTemp(p.Root, ".msctl-new-")
	if err != nil {
		return fmt.Errorf("create staging directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	stage := filepath.Join(tmp, "stage")
	for _, f := range p.Files {
		dst := filepath.Join(stage, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("stage %s: %w", f.Path, err)
		}
		if err := os.WriteFile(dst, f.Data, 0o644); err != nil {
			return fmt.Errorf("stage %s: %w", f.Path, err)
		}
	}
	fi, err := os.Stat(p.ManifestPath)
	if err != nil {
		return fmt.Errorf("stat manifest: %w", err)
	}
	old, err := os.ReadFile(p.ManifestPath)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	newManifest := filepath.Join(tmp, manifest.FileName)
	if err := os.WriteFile(newManifest, p.Manifest, fi.Mode().Perm()); err != nil {
		return fmt.Errorf("stage manifest: %w", err)
	}
	if err := p.step("staged"); err != nil {
		return err
	}

	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", uerr))
			}
		}
	}()
	for _, unit := range p.units() {
		src := filepath.Join(stage, filepath.FromSlash(unit))
		dst := filepath.Join(p.Root, filepath.FromSlash(unit))
		if _, err := os.Lstat(dst); err == nil {
			return refuse("remove or rename "+unit+", or choose another service name", "%s appeared while the service was being created", unit)
		}
		created, err := mkdirAll(filepath.Dir(dst))
		undo = append(undo, func() error { return removeDirs(created) })
		if err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(unit), err)
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("move %s into place: %w", unit, err)
		}
		undo = append(undo, func() error { return os.RemoveAll(dst) })
		if err := p.step("moved " + unit); err != nil {
			return err
		}
	}

	if err := os.Rename(newManifest, p.ManifestPath); err != nil {
		return fmt.Errorf("replace manifest: %w", err)
	}
	undo = append(undo, func() error {
		restore := filepath.Join(tmp, manifest.FileName+".old")
		if err := os.WriteFile(restore, old, fi.Mode().Perm()); err != nil {
			return err
		}
		return os.Rename(restore, p.ManifestPath)
	})
	if err := p.step("manifest"); err != nil {
		return err
	}
	// The checks before planning cover what can be known without the new
	// files; the loader has the last word on the workspace as a whole.
	if _, err := manifest.Load(p.ManifestPath); err != nil {
		return err
	}
	return nil
}

func (p *Plan) step(name string) error {
	if p.hook == nil {
		return nil
	}
	return p.hook(name)
}

// units are what Apply moves: the service directory as a whole, and every
// file outside it one by one.
func (p *Plan) units() []string {
	units := []string{p.Dir}
	for _, f := range p.Files {
		if !strings.HasPrefix(f.Path, p.Dir+"/") {
			units = append(units, f.Path)
		}
	}
	return units
}

// mkdirAll is os.MkdirAll returning the directories it created, outermost
// first, so they can be removed again.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	slices.Reverse(missing)
	var created []string
	for _, d := range missing {
		if err := os.Mkdir(d, 0o755); err != nil {
			return created, err
		}
		created = append(created, d)
	}
	return created, nil
}

func removeDirs(dirs []string) error {
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
