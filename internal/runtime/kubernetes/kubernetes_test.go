package kubernetes_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/kubernetes"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/testenv"
)

// echoWorkspace writes a manifest with the conformance suite's echo
// service, under a project no other test uses.
func echoWorkspace(t testing.TB) *manifest.Manifest {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	dir := t.TempDir()
	yaml := "project: k" + hex.EncodeToString(b) + "\nservices:\n  echo:\n    path: " + runtimetest.EchoDir() + "\n    language: go\n"
	if err := os.WriteFile(filepath.Join(dir, manifest.FileName), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(filepath.Join(dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newRuntime returns a Runtime on the test cluster whose namespace is
// deleted when the test ends.
func newRuntime(t testing.TB, m *manifest.Manifest) *kubernetes.Runtime {
	t.Helper()
	kubeconfig := testenv.RequireKubernetes(t)
	testenv.RequireDocker(t) // service images are built by the local engine
	rt, err := kubernetes.New(kubernetes.Options{
		Manifest: m, Kubeconfig: kubeconfig, ContainerdSock: testenv.KubernetesContainerdSock(t),
		CollectorBinary: staticMsctl(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first import of the infra images into the node outlasts the
	// suite's own deadline; later runs find them there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := rt.LoadInfraImages(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := rt.Cleanup(ctx, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = rt.Close()
	})
	return rt
}

var (
	staticOnce sync.Once
	staticDir  string
	staticBin  string
	staticErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if staticDir != "" {
		_ = os.RemoveAll(staticDir)
	}
	os.Exit(code)
}

// staticMsctl builds the collector's msctl once per test binary.
func staticMsctl(t testing.TB) string {
	t.Helper()
	staticOnce.Do(func() {
		staticDir, staticErr = os.MkdirTemp("", "msctl-static-")
		if staticErr != nil {
			return
		}
		staticBin = filepath.Join(staticDir, "msctl")
		staticErr = testenv.BuildStaticMsctl(staticBin)
	})
	if staticErr != nil {
		t.Fatal(staticErr)
	}
	return staticBin
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		return newRuntime(t, echoWorkspace(t))
	})
}
