package testenv

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Result is how a command ended.
type Result struct {
	Args           []string // the command line, for messages
	Stdout, Stderr string
	Code           int // the exit code; -1 when a signal (the timeout) ended it
}

// Must fails the test unless the command exited 0, and returns r.
func (r Result) Must(t testing.TB) Result {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// Exec runs name in dir and waits for it, at most timeout and never past a
// minute before the test's deadline: a step that is too slow fails the
// test, whose cleanups (msctl down) then still run, rather than the test
// binary panicking and leaving processes and containers behind. Only a
// command that cannot start fails the test; its exit code is the caller's.
func Exec(t testing.TB, timeout time.Duration, dir, name string, args ...string) Result {
	t.Helper()
	end := time.Now().Add(timeout)
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok && d.Add(-time.Minute).Before(end) {
			end = d.Add(-time.Minute)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Args: append([]string{filepath.Base(name)}, args...), Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", strings.Join(r.Args, " "), err)
	}
	return r
}
