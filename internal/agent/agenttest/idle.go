package agenttest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/runtime/local"
	"github.com/msctl/msctl/internal/testenv"
)

// IdleAgent starts, in a directory of its own, an agent over the workspace
// that manifest (msctl.yaml's text) describes, with a directory for each of
// services, on the local runtime, without bringing anything up: enough for
// its API and its OTLP receiver. It goes down at cleanup. dir is the
// workspace's directory.
func IdleAgent(t testing.TB, manifest string, services ...string) (a *agent.Agent, dir string) {
	t.Helper()
	dir = t.TempDir()
	for _, s := range services {
		if err := os.MkdirAll(filepath.Join(dir, "services", s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := testenv.Manifest(t, dir, manifest)
	rt, err := local.New(local.Options{StateDir: agent.StateDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	a, err = agent.Start(agent.Options{Manifest: m, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Down(context.Background(), false) })
	return a, dir
}
