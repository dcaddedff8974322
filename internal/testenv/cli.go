package testenv

import (
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// CLI runs one msctl binary in one workspace, as a person at a shell
// would.
type CLI struct {
	Bin, Dir string
	// Timeout bounds each command; zero means 6 minutes, enough for an up
	// that builds every service on a loaded machine.
	Timeout time.Duration
}

// Run runs msctl with args; see Exec.
func (c CLI) Run(t testing.TB, args ...string) Result {
	t.Helper()
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 6 * time.Minute
	}
	return Exec(t, timeout, c.Dir, c.Bin, args...)
}

// Must runs msctl with args and fails the test unless it exits 0.
func (c CLI) Must(t testing.TB, args ...string) Result {
	t.Helper()
	return c.Run(t, args...).Must(t)
}

// Command is msctl with args as a command to start, for a foreground up
// that the test interrupts itself.
func (c CLI) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.Bin, args...)
	cmd.Dir = c.Dir
	return cmd
}

// PS is `msctl ps --json`.
func (c CLI) PS(t testing.TB) []state.Component {
	t.Helper()
	r := c.Must(t, "ps", "--json")
	var comps []state.Component
	if err := json.Unmarshal([]byte(r.Stdout), &comps); err != nil {
		t.Fatalf("ps --json: %v\n%s", err, r.Stdout)
	}
	return comps
}

// Components is `msctl ps --json` by name.
func (c CLI) Components(t testing.TB) map[string]state.Component {
	t.Helper()
	out := map[string]state.Component{}
	for _, comp := range c.PS(t) {
		out[comp.Name] = comp
	}
	return out
}

// AddFault is `msctl chaos add ARGS --json`: the fault the agent applied.
func (c CLI) AddFault(t testing.TB, args ...string) state.Fault {
	t.Helper()
	r := c.Must(t, append(append([]string{"chaos", "add"}, args...), "--json")...)
	var f state.Fault
	if err := json.Unmarshal([]byte(r.Stdout), &f); err != nil {
		t.Fatalf("chaos add --json: %v\n%s", err, r.Stdout)
	}
	return f
}

// DownAtCleanup runs `msctl down --volumes` when the test ends, so that
// nothing it brought up outlives it, and fails the test if that fails.
func (c CLI) DownAtCleanup(t testing.TB) {
	t.Cleanup(func() {
		if r := c.Run(t, "down", "--volumes"); r.Code != 0 {
			t.Errorf("msctl down --volumes: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
}
