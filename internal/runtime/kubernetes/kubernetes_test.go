package kubernetes_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
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
	})
	if err != nil {
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

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		return newRuntime(t, echoWorkspace(t))
	})
}
