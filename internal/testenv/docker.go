package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/msctl/msctl/internal/runtime/docker"
)

// Infra images msctl defaults to. No registry is reachable where the tests run, so CI builds
// offline stand-ins under these same tags (.ci/images/build.sh, `make images`); tests must
// never pull.
const (
	PostgresImage = "postgres:15"
	NATSImage     = "nats:2.15"
	EtcdImage     = "bitnami/etcd:3.5"
	// DebianBaseImage is the local bookworm base the stand-ins are built on.
	DebianBaseImage = "msctl/debian-base:bookworm"
)

// PactLibDirs are the directories searched for libpact_ffi.so; pact-go's rpath covers both.
var PactLibDirs = []string{"/usr/local/lib", "/usr/lib"}

// dockerPing is probed once per test binary: every test asking gets the same answer.
var dockerPing = sync.OnceValue(func() error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("create docker client: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("ping docker daemon: %w", err)
	}
	return nil
})

// testcontainersDefaults are what testcontainers-go needs on machines without a registry: the
// reaper image cannot be pulled (tests clean up with t.Cleanup instead), and without the host
// override it dials the machine's default gateway instead of the published 127.0.0.1 ports.
var testcontainersDefaults = sync.OnceFunc(func() {
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if os.Getenv(k) == "" {
			_ = os.Setenv(k, v) // fails only for invalid names; these are constants
		}
	}
})

// RequireDocker skips the test when no Docker daemon answers, or fails it when CI is set:
// CI installs and starts Docker, so a missing daemon there is a broken run, not a reason to
// test less. It also sets the testcontainers-go defaults above unless the environment already
// chose, so every Docker test may use testcontainers directly after calling it.
func RequireDocker(t testing.TB) {
	t.Helper()
	if err := dockerPing(); err != nil {
		unavailable(t, "docker unavailable: %v (start dockerd; CI does this in .ci/run)", err)
	}
	testcontainersDefaults()
}

// RequirePact skips the test when the Pact FFI library is not installed, or fails it when CI
// is set. pact-go must not be left to find out itself: its fallback downloads the library.
func RequirePact(t testing.TB) {
	t.Helper()
	for _, dir := range PactLibDirs {
		if _, err := os.Stat(dir + "/libpact_ffi.so"); err == nil {
			return
		}
	}
	unavailable(t, "pact unavailable: libpact_ffi.so not found in %v (run `make pact`)", PactLibDirs)
}

// RequireCommand skips the test when the program name is not on PATH, or
// fails it when CI is set; install says how to get it.
func RequireCommand(t testing.TB, name, install string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		unavailable(t, "%s unavailable: %v (%s)", name, err, install)
	}
}

// SkipShort skips a test that builds binaries or brings whole systems up
// when -short asks for the quick tests only; what says what it does.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: skipped with -short", what)
	}
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// RemoveDockerWorkspace removes everything of project from Docker —
// containers, network, volumes and the service images — whichever runtime
// made it. Failures are test errors: a leak must not pass silently.
func RemoveDockerWorkspace(t testing.TB, project string) {
	t.Helper()
	rt, err := docker.New(docker.Options{Project: project})
	if err != nil {
		t.Error(err)
		return
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Cleanup(ctx, true); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if err := rt.RemoveImages(ctx); err != nil {
		t.Errorf("remove images: %v", err)
	}
}
