package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

func TestKilledServiceIsRestarted(t *testing.T) {
	ensureUp(t)
	c := client(t)
	before := component(shop.PS(t), "payments")
	snap, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Registry["payments"]) != 1 {
		t.Fatalf("registry before: %+v", snap.Registry["payments"])
	}
	oldID := snap.Registry["payments"][0].ID
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var dropped bool
	testenv.Until(t, 60*time.Second, "payments re-registered under a new instance", func() bool {
		s, err := c.Snapshot(t.Context())
		if err != nil {
			return false
		}
		ins := s.Registry["payments"]
		if len(ins) == 0 || len(ins) == 1 && ins[0].ID != oldID {
			dropped = true
		}
		return dropped && len(ins) == 1 && ins[0].ID != oldID
	})
	after := component(shop.PS(t), "payments")
	if after.Restarts != before.Restarts+1 || after.PID == before.PID || after.State != state.StateHealthy {
		t.Errorf("payments after kill -9: %+v (before %+v)", after, before)
	}
}

func TestKilledAgentThenUp(t *testing.T) {
	ensureUp(t)
	c := client(t)
	comps := shop.PS(t)
	old := processes(t)
	if err := syscall.Kill(c.Info().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The main thread turns zombie while the others still tear down the
	// process and hold its files: gone means the agent lock is free too.
	testenv.Until(t, 5*time.Second, "agent dead", func() bool {
		return !testenv.Alive(c.Info().PID) && !agent.Alive(agent.StateDir(shop.Dir))
	})

	// NATS and etcd died with the agent. What it started dies after it,
	// each at its own pace: Postgres on its parent-death signal (a fast
	// shutdown, longer the more it has to checkpoint), a service when it
	// next writes to the pipe the agent read its output from (SIGPIPE).
	// Meanwhile ps lists them as orphans rather than claim nothing is up.
	// Processes only die, so what ps --json leaves out and still runs
	// afterwards was left out while it ran; and a first ps that listed
	// nothing means the second lists nothing either.
	const hint = "msctl up reaps them; msctl down stops them"
	text := shop.Must(t, "ps")
	listed := map[int]string{}
	for _, o := range shop.PS(t) {
		listed[o.PID] = o.Name
		if o.State != "orphaned" || !slices.Contains(old, o.PID) {
			t.Errorf("ps --json after the agent died: %+v, want an orphaned process it started", o)
		}
	}
	if len(listed) > 0 && (!strings.Contains(text.Stderr, hint) || !strings.Contains(text.Stdout, "orphaned")) {
		t.Errorf("ps after the agent died:\nstdout:\n%s\nstderr:\n%s", text.Stdout, text.Stderr)
	}
	for _, pid := range old {
		if _, ok := listed[pid]; !ok && pid != c.Info().PID && testenv.Alive(pid) {
			t.Errorf("ps --json after the agent died leaves out pid %d, which still runs", pid)
		}
	}
	for _, comp := range comps {
		if name, ok := listed[comp.PID]; ok && comp.Kind == state.KindService && name != comp.Name {
			t.Errorf("ps --json after the agent died lists pid %d as %s, want %s", comp.PID, name, comp.Name)
		}
	}

	shop.Must(t, "up", "-d", "--runtime", "local")
	testenv.AssertGone(t, old)
	for _, comp := range shop.PS(t) {
		if comp.State != state.StateHealthy {
			t.Errorf("%s is %s after the restart", comp.Name, comp.State)
		}
	}
}

func TestDownLeavesNothingButData(t *testing.T) {
	ensureUp(t)
	comps := shop.PS(t)
	pids := processes(t)
	r := shop.Must(t, "down")
	if !strings.Contains(r.Stderr, "stopped") {
		t.Errorf("down said %q", r.Stderr)
	}
	testenv.AssertGone(t, pids)
	testenv.AssertPortsFree(t, comps)
	assertDataKept(t)
	if r := shop.Must(t, "down"); !strings.Contains(r.Stderr, "nothing is up") {
		t.Errorf("second down said %q", r.Stderr)
	}
}

func TestForegroundInterrupt(t *testing.T) {
	shop.Must(t, "down")
	cmd := shop.Command("up", "--runtime", "local")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testenv.Until(t, 3*time.Minute, "foreground up healthy", func() bool {
		return strings.Contains(out.String(), "gateway http://")
	})
	comps := shop.PS(t)
	pids := processes(t)
	email := signupOnKeptData(t)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 130 {
		t.Errorf("foreground up after SIGINT: %v, want exit 130\n%s", err, errb.String())
	}
	testenv.AssertGone(t, pids)
	testenv.AssertPortsFree(t, comps)
	if _, err := agent.Connect(shop.Dir); err != agent.ErrNotRunning {
		t.Errorf("agent still reachable: %v", err)
	}
	assertDataKept(t)
	interruptedUser = email
}

// interruptedUser signed up while a foreground up ran that was then
// interrupted; the next up must still know it.
var interruptedUser string

// signupOnKeptData signs up a fresh user on a workspace just brought up
// on kept data and returns its email.
func signupOnKeptData(t testing.TB) string {
	t.Helper()
	email := fmt.Sprintf("e2e-%d@example.com", time.Now().UnixNano())
	// Right after an up on kept data: the previous run's registrations must
	// be gone, so the first request already reaches a live instance.
	shop.Gateway(t).SignIn(email, "E2E")
	return email
}

// assertDataKept checks that the data of Postgres, NATS and etcd is still
// under .msctl.
func assertDataKept(t testing.TB) {
	t.Helper()
	for _, d := range []string{"postgres", "nats", "etcd"} {
		if fi, err := os.Stat(filepath.Join(shop.Dir, ".msctl", d)); err != nil || !fi.IsDir() {
			t.Errorf(".msctl/%s after stopping: %v", d, err)
		}
	}
}

func TestGatewayPortTaken(t *testing.T) {
	shop.Must(t, "down")
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", shop.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := shop.Run(t, "up", "-d", "--runtime", "local")
	if r.Code != 1 || !strings.Contains(r.Stderr, "stop it or set gateway.port") || !strings.Contains(r.Stderr, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("up with the gateway port taken: exit %d\n%s", r.Code, r.Stderr)
	}
	if _, err := agent.Connect(shop.Dir); err != agent.ErrNotRunning {
		t.Errorf("agent left running after a failed up: %v", err)
	}
}

func TestDownVolumesRemovesData(t *testing.T) {
	ensureUp(t)
	if interruptedUser != "" {
		if _, st := shop.Gateway(t).Login(interruptedUser); st != http.StatusOK {
			t.Errorf("login of %s, signed up before a foreground up was interrupted: %d, want its data kept", interruptedUser, st)
		}
	}
	shop.Must(t, "down", "--volumes")
	for _, d := range []string{"postgres", "nats", "etcd"} {
		if _, err := os.Stat(filepath.Join(shop.Dir, ".msctl", d)); !os.IsNotExist(err) {
			t.Errorf(".msctl/%s after down --volumes: %v", d, err)
		}
	}
}

// BenchmarkLocalUp measures a warm `msctl up -d` to all-healthy and `msctl
// down` on the local runtime.
func BenchmarkLocalUp(b *testing.B) {
	shop.Must(b, "up", "-d", "--runtime", "local") // warm the builds and the data
	shop.Must(b, "down")
	var up, down time.Duration
	for b.Loop() {
		t0 := time.Now()
		shop.Must(b, "up", "-d", "--runtime", "local")
		up += time.Since(t0)
		t1 := time.Now()
		shop.Must(b, "down")
		down += time.Since(t1)
	}
	b.ReportMetric(up.Seconds()/float64(b.N), "up-s")
	b.ReportMetric(down.Seconds()/float64(b.N), "down-s")
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
