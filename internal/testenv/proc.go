package testenv

import (
	"bytes"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process in a process group of its own, so that a signal
// reaches whatever it started too (nginx's workers), with its output kept
// for failure messages.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  Buffer
	done chan struct{}
}

// StartProc starts cmd and, when the test ends, stops it with stop (see
// Stop) and shows its output if the test failed.
func StartProc(t testing.TB, name string, cmd *exec.Cmd, stop syscall.Signal) *Proc {
	t.Helper()
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(stop)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Output())
		}
	})
	return p
}

// Output is everything the process printed so far (the most recent
// part, past Buffer's limit).
func (p *Proc) Output() string { return p.out.String() }

// PGID is the process group the process and its children share.
func (p *Proc) PGID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends sig to the process group and waits for the process to exit,
// killing the group if it has not within 5s.
func (p *Proc) Stop(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.PGID(), sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.PGID(), syscall.SIGKILL)
		<-p.done
	}
}

// Buffer collects a process's output, written from the goroutines that
// copy its stdout and stderr. It keeps the most recent 4 MiB at most, so a
// chatty process that runs long cannot fill the memory.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxBuffer = 4 << 20

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxBuffer {
		keep := b.buf.Bytes()[b.buf.Len()/2:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return b.buf.Write(p)
}

// String is everything kept.
func (b *Buffer) String() string { return b.Tail(maxBuffer) }

// Tail is the last n bytes kept at most.
func (b *Buffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.buf.Bytes()
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return string(out)
}
