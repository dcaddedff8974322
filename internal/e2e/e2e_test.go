// Package e2e drives the msctl binary against a copy of the workspace on
// the local runtime: up, the public API through the gateway, restarts,
// crashes, down. The copy gets a free gateway port, so it runs beside other
// tests and never touches 8080.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

var (
	msctlBin  string // the binary under test
	workspace string // the copied workspace
	gwPort    int
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "msctl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// Postgres runs as another user when we are root: it must reach the
	// data directory under the workspace.
	if err := os.Chmod(tmp, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	msctlBin = filepath.Join(tmp, "msctl")
	if err := testenv.BuildMsctl(msctlBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// All state lives in the copy's .msctl/; services build from the repository.
	if gwPort, err = freeport.Get(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	workspace = filepath.Join(tmp, "ws")
	if _, err := testenv.ShopManifest(workspace, "", gwPort); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	// Whatever a failed test left running goes, and so does its data.
	cmd := exec.Command(msctlBin, "down", "--volumes")
	cmd.Dir = workspace
	_ = cmd.Run()
	return code
}

type result struct {
	stdout, stderr string
	code           int
}

// msctl runs the binary in the workspace and waits for it.
func msctl(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, msctlBin, args...)
	cmd.Dir = workspace
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("msctl %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func mustMsctl(t testing.TB, args ...string) result {
	t.Helper()
	r := msctl(t, args...)
	if r.code != 0 {
		t.Fatalf("msctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func ps(t testing.TB) []state.Component {
	t.Helper()
	var comps []state.Component
	r := mustMsctl(t, "ps", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &comps); err != nil {
		t.Fatalf("ps --json: %v\n%s", err, r.stdout)
	}
	return comps
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
	mustMsctl(t, "up", "-d", "--runtime", "local")
}

func client(t testing.TB) *agent.Client {
	t.Helper()
	c, err := agent.Connect(workspace)
	if err != nil {
		t.Fatalf("connect to the agent: %v", err)
	}
	return c
}

// eventually retries cond every 100ms for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processes lists every pid of this workspace: services from ps, and
// everything the runtime recorded (Postgres included).
func processes(t testing.TB) []int {
	t.Helper()
	var pids []int
	for _, c := range ps(t) {
		if c.PID != 0 {
			pids = append(pids, c.PID)
		}
	}
	data, err := os.ReadFile(filepath.Join(workspace, ".msctl", "pids.json"))
	if err == nil {
		var recs []struct {
			PID int `json:"pid"`
		}
		_ = json.Unmarshal(data, &recs)
		for _, r := range recs {
			pids = append(pids, r.PID)
		}
	}
	return pids
}

func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] != 'Z'
}

// assertGone checks that no process and no process group of pids is left.
func assertGone(t testing.TB, pids []int) {
	t.Helper()
	for _, pid := range pids {
		eventually(t, 10*time.Second, fmt.Sprintf("pid %d gone", pid), func() bool { return !alive(pid) })
		if err := syscall.Kill(-pid, 0); err == nil {
			// A group whose members are all zombies still answers.
			eventually(t, 5*time.Second, fmt.Sprintf("process group %d gone", pid), func() bool {
				return syscall.Kill(-pid, 0) != nil || !groupHasLiving(pid)
			})
		}
	}
}

func groupHasLiving(pgid int) bool {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid && alive(pid) {
			return true
		}
	}
	return false
}

func assertPortsFree(t testing.TB, comps []state.Component) {
	t.Helper()
	for _, c := range comps {
		ep := c.Endpoint
		if i := strings.Index(ep, "://"); i >= 0 {
			ep = ep[i+3:]
		}
		if ep == "" {
			continue
		}
		eventually(t, 5*time.Second, "port of "+c.Name+" released", func() bool {
			l, err := net.Listen("tcp", ep)
			if err != nil {
				return false
			}
			l.Close()
			return true
		})
	}
}
