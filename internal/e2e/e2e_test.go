// Package e2e drives the msctl binary against a copy of the workspace on
// the local runtime: up, the public API through the gateway, restarts,
// crashes, down. The copy gets a free gateway port, so it runs beside other
// tests and never touches 8080.
package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// processes lists every pid of this workspace: services from ps, and
// everything the runtime recorded (Postgres included).
func processes(t testing.TB) []int {
	t.Helper()
	var pids []int
	for _, c := range shop.PS(t) {
		if c.PID != 0 {
			pids = append(pids, c.PID)
		}
	}
	data, err := os.ReadFile(filepath.Join(shop.Dir, ".msctl", "pids.json"))
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
		testenv.Until(t, 10*time.Second, fmt.Sprintf("pid %d gone", pid), func() bool { return !alive(pid) })
		if err := syscall.Kill(-pid, 0); err == nil {
			// A group whose members are all zombies still answers.
			testenv.Until(t, 5*time.Second, fmt.Sprintf("process group %d gone", pid), func() bool {
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
		testenv.Until(t, 5*time.Second, "port of "+c.Name+" released", func() bool {
			l, err := net.Listen("tcp", ep)
			if err != nil {
				return false
			}
			l.Close()
			return true
		})
	}
}
