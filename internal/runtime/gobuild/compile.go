package gobuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Target is one main package to build: Dir, inside the module, into a
// binary called Name.
type Target struct{ Name, Dir string }

// Compile builds targets, main packages of the module rooted at root, into
// outDir/<Name>. One go build makes them all when every package directory
// is named after its target (go build -o DIR/ names each binary after its
// directory): it loads the shared packages once and compiles in parallel.
// Otherwise each target gets its own go build. env is added to the
// toolchain's environment and flags go before the packages. The error of a
// failed run carries the compiler's output; which binaries it left is for
// the caller to look at.
func Compile(ctx context.Context, root, outDir string, targets []Target, env, flags []string) error {
	pkgs := make([]string, len(targets))
	sameName := true
	for i, t := range targets {
		rel, err := filepath.Rel(root, t.Dir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("build %s: %s is outside module %s", t.Name, t.Dir, root)
		}
		pkgs[i] = "./" + filepath.ToSlash(rel)
		sameName = sameName && filepath.Base(t.Dir) == t.Name
	}
	var runs [][]string
	if sameName {
		runs = [][]string{append(append([]string{"build", "-o", outDir + string(filepath.Separator)}, flags...), pkgs...)}
	} else {
		for i, t := range targets {
			runs = append(runs, append(append([]string{"build", "-o", filepath.Join(outDir, t.Name)}, flags...), pkgs[i]))
		}
	}
	var failed error
	for _, args := range runs {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			failed = fmt.Errorf("go build in %s: %w\n%s", root, err, strings.TrimSpace(out.String()))
		}
	}
	return failed
}

// ModuleRoot finds the directory of the go.mod governing dir.
func ModuleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or any parent directory", dir)
		}
	}
}
