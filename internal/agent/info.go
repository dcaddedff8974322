package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// StateDirName is the per-workspace directory holding the agent's files
// and the runtime's data.
const StateDirName = ".msctl"

// StateDir returns the state directory of the workspace rooted at dir.
func StateDir(workspace string) string { return filepath.Join(workspace, StateDirName) }

// Info is the content of .msctl/agent.json: how to reach the agent.
type Info struct {
	PID       int       `json:"pid"`
	Addr      string    `json:"addr"`
	Token     string    `json:"token"`
	OTLP      string    `json:"otlp"`
	Runtime   string    `json:"runtime"`
	StartedAt time.Time `json:"started_at"`
}

// ErrNotRunning means no agent serves the workspace.
var ErrNotRunning = errors.New("nothing is up in this workspace (start it with msctl up -d)")

// ErrAlreadyRunning means another agent owns the workspace.
var ErrAlreadyRunning = errors.New("an msctl agent already runs this workspace")

func infoPath(stateDir string) string { return filepath.Join(stateDir, "agent.json") }
func lockPath(stateDir string) string { return filepath.Join(stateDir, "agent.lock") }

func writeInfo(stateDir string, in Info) error {
	data, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	tmp := infoPath(stateDir) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write agent.json: %w", err)
	}
	return os.Rename(tmp, infoPath(stateDir))
}

func readInfo(stateDir string) (Info, error) {
	var in Info
	data, err := os.ReadFile(infoPath(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return in, ErrNotRunning
	}
	if err != nil {
		return in, fmt.Errorf("read agent.json: %w", err)
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return in, fmt.Errorf("read agent.json: %w", err)
	}
	return in, nil
}

// lock takes the workspace's agent lock. The kernel drops it when the
// holder dies, however it dies, so a lock that can be taken means no agent
// is alive, whatever agent.json says.
func lock(stateDir string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(stateDir), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open agent lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrAlreadyRunning
		}
		return nil, fmt.Errorf("take agent lock: %w", err)
	}
	return f, nil
}

// Alive reports whether an agent holds the workspace's lock.
func Alive(stateDir string) bool {
	f, err := lock(stateDir)
	if err != nil {
		return errors.Is(err, ErrAlreadyRunning)
	}
	f.Close()
	return false
}
