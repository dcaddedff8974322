package systest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/msctl/msctl/internal/testenv"
)

var (
	buildMu  sync.Mutex
	built    = map[string]string{} // service -> binary, built by this test binary
	binDir   string
	buildErr = map[string]error{}
)

// Build compiles the named services (those not built yet by this test
// binary) in one `go build` and returns their binaries, in order. Each test
// binary has its own output directory (test binaries of several packages
// run at once, and overwriting a running executable fails); directories of
// test binaries that are gone are removed on the next build.
func Build(t testing.TB, names ...string) []string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	var missing []string
	for _, n := range names {
		if err := buildErr[n]; err != nil {
			t.Fatalf("build %s: %v", n, err)
		}
		if _, ok := built[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		if err := build(missing); err != nil {
			for _, n := range missing {
				buildErr[n] = err
			}
			t.Fatalf("build %v: %v", missing, err)
		}
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = built[n]
	}
	return out
}

func build(names []string) error {
	if binDir == "" {
		parent := filepath.Join(os.TempDir(), "msctl-systest-bin")
		pruneDead(parent)
		binDir = filepath.Join(parent, strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			return fmt.Errorf("binary directory: %w", err)
		}
	}
	args := []string{"build", "-o", binDir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./services/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	for _, n := range names {
		built[n] = filepath.Join(binDir, n)
	}
	return nil
}

// pruneDead removes the binary directories of test binaries no longer running.
func pruneDead(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}
