package local

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/runtime"
)

// Start runs one instance as a child process in its own process group, so
// that stopping it also stops anything it spawned and a Ctrl-C in the
// terminal reaches the agent only, which then stops everyone in order.
// The process outlives ctx: ctx only bounds starting it.
func (r *Runtime) Start(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	b, ok := r.built(spec.Service)
	if !ok {
		return nil, fmt.Errorf("start %s: %w", spec.Service, runtime.ErrNotBuilt)
	}
	port := spec.HostPort
	if port != 0 {
		if freeport.Check(port) != nil {
			return nil, &runtime.PortInUseError{Port: port, Holder: freeport.Holder(port)}
		}
	} else {
		p, err := freeport.Get()
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", spec.Service, err)
		}
		port = p
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	var cmd *exec.Cmd
	if b.Language == "node" {
		cmd = exec.Command("node", ".")
	} else {
		cmd = exec.Command(r.binPath(spec.Service))
	}
	cmd.Dir = b.Dir
	cmd.Env = baseEnv()
	for k, v := range spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "HTTP_ADDR="+addr, "ADVERTISE_ADDR="+addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Our own pipes rather than cmd's: cmd.Wait would close its pipes as soon
	// as the leader exits, and we want the last lines of the group too.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Service, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Service, err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Service, err)
	}
	pid := cmd.Process.Pid
	in := &instance{
		info: runtime.InstanceInfo{ID: spec.Instance, Endpoint: addr, PID: pid, StartedAt: time.Now()},
		pid:  pid,
		done: make(chan struct{}),
	}
	start, _, _ := procStat(pid)
	if err := r.pids.add(proc{PID: pid, PGID: pid, What: spec.Instance, Service: spec.Service, Endpoint: addr, Start: start}); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, fmt.Errorf("start %s: %w", spec.Service, err)
	}
	out := spec.Output
	if out == nil {
		out = func(string, string) {}
	}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go scanLines(outR, "stdout", out, &pipes)
	go scanLines(errR, "stderr", out, &pipes)
	go func() {
		err := cmd.Wait()
		ex := runtime.Exit{Code: cmd.ProcessState.ExitCode(), At: time.Now()}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ex.Err = fmt.Errorf("killed by %v", ws.Signal())
		} else if err != nil && ex.Code == 0 {
			ex.Err = err
		}
		// Anything the instance left behind in its group goes with it; then
		// the pipes reach EOF, unless a process escaped the group.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		drained := make(chan struct{})
		go func() { pipes.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
		}
		outR.Close()
		errR.Close()
		r.pids.remove(pid)
		in.exit = ex
		close(in.done)
	}()
	return in, nil
}

// scanLines hands each line of a pipe to out. Very long lines are split
// rather than dropped.
func scanLines(rd io.Reader, stream string, out func(stream, line string), wg *sync.WaitGroup) {
	defer wg.Done()
	br := bufio.NewReaderSize(rd, 64*1024)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			out(stream, string(line))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// baseEnv is what a service inherits from the agent's environment: enough
// to run programs, nothing that could be mistaken for service settings.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

type instance struct {
	info runtime.InstanceInfo
	pid  int
	done chan struct{}
	exit runtime.Exit // set before done is closed
}

var _ runtime.Instance = (*instance)(nil)

func (i *instance) Info() runtime.InstanceInfo { return i.info }
func (i *instance) Done() <-chan struct{}      { return i.done }

func (i *instance) Exit() runtime.Exit {
	<-i.done
	return i.exit
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace.
func (i *instance) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-i.done:
		return nil
	default:
	}
	_ = syscall.Kill(-i.pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-i.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-i.pid, syscall.SIGKILL)
	select {
	case <-i.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("process %d did not exit after SIGKILL", i.pid)
	}
}
