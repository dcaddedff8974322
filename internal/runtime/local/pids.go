package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one process we started, recorded in .msctl/pids.json so that a
// later run can stop it when the agent that owned it died without doing so.
type proc struct {
	PID  int    `json:"pid"`
	PGID int    `json:"pgid"`
	What string `json:"what"` // service instance id or "postgres"
	// Service and Endpoint let a reader without an agent (ps) say what
	// the process is; empty for postgres and in files of older versions.
	Service  string `json:"service,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Start is the process start time in clock ticks since boot
	// (/proc/<pid>/stat field 22): with the pid it names the process
	// uniquely, so a recycled pid is never mistaken for ours.
	Start uint64 `json:"start"`
}

// pidFile keeps the set of live processes on disk. Every change rewrites
// the file atomically.
type pidFile struct {
	path  string
	mu    sync.Mutex
	procs map[int]proc
}

func newPidFile(path string) *pidFile {
	return &pidFile{path: path, procs: map[int]proc{}}
}

func (f *pidFile) add(p proc) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.procs[p.PID] = p
	return f.saveLocked()
}

func (f *pidFile) remove(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.procs, pid)
	_ = f.saveLocked()
}

func (f *pidFile) saveLocked() error {
	list := make([]proc, 0, len(f.procs))
	for _, p := range f.procs {
		list = append(list, p)
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	// A temporary file of its own: another pidFile on the same directory
	// (a runtime reaping what a killed one left) may be saving too, and a
	// shared name would let its rename take this one's file away.
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("record pids: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("record pids: %w", err)
	}
	return nil
}

// reap stops every recorded process that is still ours, in parallel:
// postgres with a fast shutdown so its data stays consistent, services
// with SIGTERM, then SIGKILL to their whole process group after grace.
// Entries of processes we do not own any more are dropped.
func (f *pidFile) reap(grace time.Duration) error {
	list, err := readProcs(f.path)
	if errors.Is(err, errTorn) {
		// A torn file names no process we could verify; start afresh.
		return os.Remove(f.path)
	}
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, p := range list {
		if !p.alive() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sig := syscall.SIGTERM
			if p.What == "postgres" {
				sig = syscall.SIGINT
			}
			killGroup(p.PGID, p.PID, sig)
			deadline := time.Now().Add(grace)
			for p.alive() && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			killGroup(p.PGID, p.PID, syscall.SIGKILL)
			for i := 0; p.alive() && i < 100; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saveLocked()
}

var errTorn = errors.New("torn pid file")

// readProcs reads a pid file; a missing file records nothing.
func readProcs(path string) ([]proc, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var list []proc
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, errTorn)
	}
	return list, nil
}

// Orphan is a process recorded in a workspace's pid file that still runs.
type Orphan struct {
	PID      int
	Name     string // the service, or "postgres"
	Instance string // the service instance id; empty for postgres
	Endpoint string // where the service listens, when recorded
}

// Orphans lists the recorded processes of the state directory stateDir that
// still run, verified by pid and start time as the reaper does, without
// touching them. Only when no agent owns the workspace are these orphans:
// the processes a killed agent left behind, which the next up reaps.
func Orphans(stateDir string) ([]Orphan, error) {
	list, err := readProcs(filepath.Join(stateDir, "pids.json"))
	if errors.Is(err, errTorn) {
		// Like the reaper: a torn file names no process we could verify.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Orphan
	for _, p := range list {
		if !p.alive() {
			continue
		}
		o := Orphan{PID: p.PID, Name: p.Service, Instance: p.What, Endpoint: p.Endpoint}
		switch {
		case p.What == "postgres":
			o.Name, o.Instance = "postgres", ""
		case o.Name == "":
			o.Name = p.What
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// alive reports whether p still runs and is the process we recorded.
// Zombies count as gone: they hold no port and no file.
func (p proc) alive() bool {
	st, state, err := procStat(p.PID)
	return err == nil && st == p.Start && state != "Z"
}

// killGroup signals the process group, falling back to the single process
// when the group is gone (its leader may have been reaped).
func killGroup(pgid, pid int, sig syscall.Signal) {
	if pgid > 0 && syscall.Kill(-pgid, sig) == nil {
		return
	}
	_ = syscall.Kill(pid, sig)
}

// procStat reads the start time (clock ticks since boot) and the state of
// a process from /proc/<pid>/stat.
func procStat(pid int) (uint64, string, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", err
	}
	// The command name is in parentheses and may contain spaces: fields
	// are counted after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", errors.New("malformed stat")
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, "", errors.New("malformed stat")
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0], err
}
