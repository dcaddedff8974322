package testenv

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// Alive reports whether process pid runs: it exists and is no zombie.
func Alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] != 'Z'
}

// AssertGone checks that no process and no process group of pids is left.
func AssertGone(t testing.TB, pids []int) {
	t.Helper()
	for _, pid := range pids {
		Until(t, 10*time.Second, fmt.Sprintf("pid %d gone", pid), func() bool { return !Alive(pid) })
		if err := syscall.Kill(-pid, 0); err == nil {
			// A group whose members are all zombies still answers.
			Until(t, 5*time.Second, fmt.Sprintf("process group %d gone", pid), func() bool {
				return syscall.Kill(-pid, 0) != nil || !groupHasLiving(pid)
			})
		}
	}
}

// groupHasLiving reports whether a process of group pgid is alive.
func groupHasLiving(pgid int) bool {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid && Alive(pid) {
			return true
		}
	}
	return false
}

// AssertPortsFree checks that the ports of comps' endpoints are released:
// each can be listened on again within 5s.
func AssertPortsFree(t testing.TB, comps []state.Component) {
	t.Helper()
	for _, c := range comps {
		ep := c.Endpoint
		if i := strings.Index(ep, "://"); i >= 0 {
			ep = ep[i+3:]
		}
		if ep == "" {
			continue
		}
		Until(t, 5*time.Second, "port of "+c.Name+" released", func() bool {
			l, err := net.Listen("tcp", ep)
			if err != nil {
				return false
			}
			l.Close()
			return true
		})
	}
}
