// Package e2e drives the msctl binary against a copy of the workspace on
// the local runtime: up, the public API through the gateway, restarts,
// crashes, down. The copy gets a free gateway port, so it runs beside other
// tests and never touches 8080.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// shop is the copied workspace and the binary under test. All state lives
// in the copy's .msctl/; services build from the repository.
var shop testenv.Shop

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	shop, err = testenv.MakeShop("", "")
	if shop.Dir != "" {
		defer os.RemoveAll(shop.Dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The binary sits beside msctl.yaml: the workspace directory is this
	// package's own.
	shop.Bin = filepath.Join(shop.Dir, "msctl")
	if err := testenv.BuildMsctl(shop.Bin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	// Whatever a failed test left running goes, and so does its data.
	_ = shop.Command("down", "--volumes").Run()
	return code
}

func component(comps []state.Component, name string) state.Component {
	for _, c := range comps {
		if c.Name == name {
			return c
		}
	}
	return state.Component{}
}

// ensureUp brings the workspace up unless it already is.
func ensureUp(t testing.TB) {
	t.Helper()
	shop.Must(t, "up", "-d", "--runtime", "local")
}

func client(t testing.TB) *agent.Client {
	t.Helper()
	c, err := agent.Connect(shop.Dir)
	if err != nil {
		t.Fatalf("connect to the agent: %v", err)
	}
	return c
}
