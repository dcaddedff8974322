package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
)

const (
	// idleWindow is how long the dashboard's CPU time is sampled.
	idleWindow = 30 * time.Second
	// userHZ is the unit of utime and stime in /proc/<pid>/stat: fixed at
	// 100 by the kernel's ABI whatever the internal tick rate.
	userHZ = 100
)

// BenchmarkDashIdleCPU runs the real `msctl dash` in a tmux pane and
// samples its CPU time over 30 s with nobody touching it: "waiting" has no
// workspace up (the dashboard retries the agent), "live" watches a workspace
// brought up with `msctl up -d` (snapshots polled and drawn every 500 ms).
func BenchmarkDashIdleCPU(b *testing.B) {
	testenv.SkipShort(b, "runs msctl dash for 30 s per case, and a workspace")
	// The dashboard needs a terminal.
	testenv.RequireCommand(b, "tmux", "apt-get install tmux")
	bin := testenv.Msctl(b)
	b.Run("waiting", func(b *testing.B) {
		ws := testenv.NewShop(b, bin, "").Dir
		for b.Loop() {
			measureDash(b, bin, ws)
		}
	})
	b.Run("live", func(b *testing.B) {
		shop := testenv.NewShop(b, bin, "")
		shop.Must(b, "up", "-d", "--runtime", "local")
		shop.DownAtCleanup(b)
		for b.Loop() {
			measureDash(b, bin, shop.Dir)
		}
	})
}

// measureDash starts the dashboard, lets it settle, and reports the share of
// one core it used over idleWindow and its resident memory afterwards.
func measureDash(b *testing.B, bin, ws string) {
	sock := filepath.Join(b.TempDir(), "tmux.sock")
	tmux := func(args ...string) string {
		cmd := exec.Command("tmux", append([]string{"-S", sock, "-f", "/dev/null"}, args...)...)
		cmd.Env = append(os.Environ(), "TERM=xterm-256color")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	tmux("new-session", "-d", "-s", "dash", "-x", "160", "-y", "48", "-c", ws, "exec "+bin+" dash")
	defer func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() }()
	pid, err := strconv.Atoi(tmux("list-panes", "-t", "dash", "-F", "#{pane_pid}"))
	if err != nil {
		b.Fatalf("pane pid: %v", err)
	}
	// Startup (first connect, first frames) is not idle: wait it out.
	time.Sleep(3 * time.Second)
	screen := tmux("capture-pane", "-p", "-t", "dash")
	if strings.TrimSpace(screen) == "" {
		b.Fatal("the dashboard drew nothing in 3 s")
	}
	t0, start := time.Now(), cpuTicks(b, pid)
	time.Sleep(idleWindow)
	ticks, wall := cpuTicks(b, pid)-start, time.Since(t0)
	b.ReportMetric(float64(ticks)/userHZ/wall.Seconds()*100, "cpu-pct")
	b.ReportMetric(float64(rssKB(b, pid))/1024, "rss-MB")
}

// cpuTicks is utime+stime of pid; the process must still be running.
func cpuTicks(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("the dashboard is gone: %v", err)
	}
	// The command name in parentheses may hold spaces: fields count from
	// after its closing parenthesis, where state is field 3.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		b.Fatalf("short /proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %q", pid, data)
	}
	return utime + stime
}

func rssKB(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("the dashboard is gone: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("parse VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
