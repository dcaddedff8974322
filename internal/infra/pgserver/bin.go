package pgserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
)

// debianRoot is where Debian and Ubuntu install versioned server binaries.
const debianRoot = "/usr/lib/postgresql"

// installHint is appended to every "not found" error so the fix is one copy-paste away.
const installHint = "install the server with `apt-get install postgresql-15` (or put initdb and postgres on PATH)"

// FindBin returns the directory holding the initdb and postgres binaries: the
// one on PATH if both are there, else the newest /usr/lib/postgresql/<v>/bin.
// The local runtime starts Postgres from it and doctor reports it, so both
// always name the same directory.
func FindBin() (string, error) {
	return findBin(exec.LookPath, debianRoot)
}

func findBin(lookPath func(string) (string, error), libRoot string) (string, error) {
	if dir, ok := binOnPath(lookPath); ok {
		return dir, nil
	}
	dirs, err := filepath.Glob(filepath.Join(libRoot, "*", "bin"))
	if err != nil {
		return "", fmt.Errorf("find postgres binaries: %w", err)
	}
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, dir := range dirs {
		if hasServer(dir) {
			return dir, nil
		}
	}
	return "", errors.New("postgres server binaries (initdb, postgres) not found on PATH or under " + libRoot + "/*/bin: " + installHint)
}

// binOnPath resolves symlinks so that a /usr/local/bin/postgres link leads to
// the real directory, where initdb of the same version lives too.
func binOnPath(lookPath func(string) (string, error)) (string, bool) {
	p, err := lookPath("postgres")
	if err != nil {
		return "", false
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	dir := filepath.Dir(p)
	if hasServer(dir) {
		return dir, true
	}
	return "", false
}

func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf reads the major version from /usr/lib/postgresql/<v>/bin; a
// directory that is not a number sorts last.
func versionOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}
