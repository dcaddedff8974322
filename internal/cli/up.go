package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/logview"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

type upOptions struct {
	root     *rootOptions
	detach   bool
	watch    bool
	runtime  string
	services []string
	// kubeContext is --context: the kubeconfig context of --runtime kubernetes.
	kubeContext string
	view        logViewFlags
	env         string
	otlpExport  otlpExportFlag
}

func newUpCmd(root *rootOptions) *cobra.Command {
	o := &upOptions{root: root}
	cmd := command("up [service...]", "Build and start the workspace: infra, then services in dependency order", cobra.ArbitraryArgs,
		func(ctx context.Context, args []string) error {
			o.services = args
			return o.run(ctx)
		})
	cmd.Long = "up builds the services, starts the infra and then every service once its dependencies are ready,\n" +
		"and shows progress until everything is healthy. Without -d it stays in the foreground, shows the\n" +
		"logs, and Ctrl-C stops everything (a second Ctrl-C stops at once). With -d a background agent\n" +
		"keeps the workspace running and up returns once everything is healthy.\n\n" +
		"When the workspace is already up, up rebuilds it and restarts only the services whose code or\n" +
		"environment (msctl.yaml env:, the --env .env files) changed (and scales those whose replicas changed), leaving the rest running.\n\n" +
		"With --watch, once up, the agent watches the services' sources: a settled edit rebuilds only the\n" +
		"services it affects (their own files, or shared code they import, go.mod, go.sum) and replaces their\n" +
		"instances one at a time; a failed build leaves them serving and shows the compiler error; an edit of\n" +
		"msctl.yaml reconciles as up does. In the foreground Ctrl-C stops watching and the workspace; with -d,\n" +
		"or when already up, Ctrl-C stops watching only and the workspace keeps running."
	cmd.Flags().BoolVarP(&o.detach, "detach", "d", false, "run in the background and return once everything is healthy")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "after up, rebuild and replace the services whose sources change, until Ctrl-C")
	cmd.Flags().StringVar(&o.runtime, "runtime", "auto", "where to run: auto, local, docker or kubernetes (auto picks docker when the daemon answers and holds the infra images, never kubernetes)")
	o.view.add(cmd)
	addEnvFlag(cmd, &o.env)
	cmd.Flags().StringVar(&o.kubeContext, "context", "", "kubeconfig context for --runtime kubernetes (default: kubernetes.context in msctl.yaml, else the current one)")
	o.otlpExport.add(cmd)
	return cmd
}

func (o *upOptions) run(ctx context.Context) error {
	m, err := loadManifestEnv(o.root, o.env)
	if err != nil {
		return err
	}
	if err := checkRuntimeFlag(o.runtime); err != nil {
		return err
	}
	if o.kubeContext != "" {
		m.Kubernetes.Context = o.kubeContext
	}
	if err := o.otlpExport.apply(m); err != nil {
		return err
	}
	if err := checkServices(m, o.services); err != nil {
		return err
	}
	if o.detach && (o.view.raw || o.view.level != "") {
		return usageError(errors.New("--raw and --level shape the logs a foreground up shows; with -d use msctl logs --raw/--level"))
	}
	logs, err := o.view.printer(o.root.stdout, m)
	if err != nil {
		return err
	}
	if c, err := o.root.connect(m.Dir()); err == nil {
		if o.otlpExport != "" {
			fmt.Fprintln(o.root.stderr, "--otlp-export applies when the agent starts: run msctl down, then up, to change it")
		}
		if err := o.reconcile(ctx, c); err != nil || !o.watch {
			return err
		}
		return o.watchDetached(ctx, m)
	}
	rtName, note, err := chooseRuntime(ctx, o.runtime, m)
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(o.root.stderr, note)
	}
	if o.detach {
		if err := o.detached(ctx, m, rtName); err != nil || !o.watch {
			return err
		}
		return o.watchDetached(ctx, m)
	}
	return o.foreground(ctx, m, rtName, logs)
}

// reconcile is up with the workspace already up: the agent rebuilds and
// restarts what changed, and up says what that was.
func (o *upOptions) reconcile(ctx context.Context, c *agent.Client) error {
	info := c.Info()
	if o.runtime != "auto" && o.runtime != info.Runtime {
		return usageError(fmt.Errorf("already up on the %s runtime (agent pid %d); run msctl down first to switch to %s", info.Runtime, info.PID, o.runtime))
	}
	fmt.Fprintf(o.root.stderr, "agent pid %d (%s runtime) is up: rebuilding to apply changes…\n", info.PID, info.Runtime)
	begin := time.Now()
	changes, err := c.Reconcile(ctx, o.services, o.env)
	var ae *agent.APIError
	if errors.As(err, &ae) && ae.Code == "restart_needed" {
		return fmt.Errorf("%s\n\tfix: msctl down, then msctl up", ae.Message)
	}
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		fmt.Fprintln(o.root.stderr, "already up; nothing changed")
		return nil
	}
	fmt.Fprintln(o.root.stderr, "already up; changed:")
	for _, ch := range changes {
		fmt.Fprintf(o.root.stderr, "  %s: %s\n", ch.Service, ch.What)
	}
	fmt.Fprintf(o.root.stderr, "up in %s\n", round(time.Since(begin)))
	return nil
}

// foreground runs the agent in this process.
func (o *upOptions) foreground(ctx context.Context, m *manifest.Manifest, rtName string, logs *logview.Printer) error {
	// Our own subscription keeps SIGINT from killing us once the root
	// context has seen the first one, which asks for a graceful stop; the
	// second signal forces it.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	force := make(chan struct{})
	go secondSignal(sigs, done, force)
	if ctx.Err() != nil {
		return ctx.Err() // interrupted before anything started
	}

	if err := os.MkdirAll(agent.StateDir(m.Dir()), 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	agentLog, err := os.OpenFile(filepath.Join(agent.StateDir(m.Dir()), "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("open agent log: %w", err)
	}
	defer agentLog.Close()
	a, closeLogs, err := o.root.startAgent(m, o.env, rtName, agentLog)
	if errors.Is(err, agent.ErrAlreadyRunning) {
		fmt.Fprintln(o.root.stderr, "already starting in another msctl; msctl ps shows it")
		return nil
	}
	if err != nil {
		return err
	}
	defer closeLogs()

	begin := time.Now()
	prog := newProgress(o.root.stderr, begin)
	logCtx, cancelLogs := context.WithCancel(ctx)
	defer cancelLogs()
	var stopping time.Time
	stopCtx, cancelStop := context.WithCancel(context.Background())
	defer cancelStop()
	err = a.Run(ctx, agent.RunOptions{
		Services: o.services,
		Progress: prog.update,
		Ready: func(s state.Snapshot) {
			o.printReady(s, begin)
			fmt.Fprintln(o.root.stderr, "press Ctrl-C to stop")
			go followLogs(a.Logs(logCtx, state.LogQuery{Follow: true, Since: time.Now()}), logs)
			if o.watch {
				o.watchForeground(logCtx, a)
			}
		},
		Stopping: func() context.Context {
			cancelLogs()
			stopping = time.Now()
			fmt.Fprintln(o.root.stderr, "stopping… (Ctrl-C again to force)")
			go func() {
				select {
				case <-force:
					fmt.Fprintln(o.root.stderr, "forcing stop")
					cancelStop()
				case <-stopCtx.Done():
				}
			}()
			return stopCtx
		},
	})
	if !stopping.IsZero() {
		fmt.Fprintf(o.root.stderr, "stopped in %s\n", round(time.Since(stopping)))
	}
	return upError(err, m)
}

// secondSignal closes force on the second signal of sigs, until done: the
// first one has cancelled the root context already.
func secondSignal(sigs <-chan os.Signal, done <-chan struct{}, force chan<- struct{}) {
	for range 2 {
		select {
		case <-sigs:
		case <-done:
			return
		}
	}
	close(force)
}

// followLogs prints followed log lines until the channel closes.
func followLogs(lines <-chan state.LogLine, p *logview.Printer) {
	for l := range lines {
		_ = p.Print(l)
	}
}

func (o *upOptions) printReady(s state.Snapshot, begin time.Time) {
	if s.GatewayURL != "" {
		fmt.Fprintf(o.root.stdout, "gateway %s\n", s.GatewayURL)
	}
	fmt.Fprintf(o.root.stderr, "up in %s\n", round(time.Since(begin)))
}

// upError adds the fix to errors a user can fix.
func upError(err error, m *manifest.Manifest) error {
	var pe *runtime.PortInUseError
	if errors.As(err, &pe) && pe.Port == m.Gateway.Port {
		return fmt.Errorf("gateway port %d is already in use%s\n\tfix: stop it or set gateway.port in %s", pe.Port, holder(pe.Holder), manifest.FileName)
	}
	return err
}

func holder(h string) string {
	if h == "" {
		return ""
	}
	return " by " + h
}

// detached starts `msctl agent` in a new session and follows its progress
// until everything is healthy.
func (o *upOptions) detached(ctx context.Context, m *manifest.Manifest, rtName string) error {
	dir := agent.StateDir(m.Dir())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find msctl: %w", err)
	}
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("open agent log: %w", err)
	}
	args := []string{"agent", "--file", m.Path(), "--runtime", rtName, "--env", o.env}
	if o.kubeContext != "" {
		args = append(args, "--context", o.kubeContext)
	}
	if o.otlpExport != "" {
		args = append(args, "--otlp-export", string(o.otlpExport))
	}
	args = append(args, o.services...)
	cmd := exec.Command(exe, args...)
	cmd.Dir = m.Dir()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return fmt.Errorf("start the agent: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	begin := time.Now()
	prog := newProgress(o.root.stderr, begin)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var c *agent.Client
	for {
		select {
		case <-exited:
			if c != nil {
				if s, err := c.Snapshot(context.Background()); err == nil && s.Error != "" {
					return errors.New(s.Error)
				}
			}
			return fmt.Errorf("the agent exited during start-up; its log (%s) ends with:\n%s", logPath, tailFile(logPath, 15))
		case <-ctx.Done():
			if c != nil {
				_ = c.Down(context.Background(), false)
			} else {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				<-exited
			}
			return ctx.Err()
		case <-tick.C:
		}
		if c == nil {
			cc, err := o.root.connect(m.Dir())
			if err != nil || cc.Info().PID != cmd.Process.Pid {
				continue
			}
			c = cc
		}
		s, err := c.Snapshot(ctx)
		if err != nil {
			continue // the agent is stopping after a failure: exited tells
		}
		prog.update(s)
		switch s.Phase {
		case state.PhaseUp:
			o.printReady(s, begin)
			return nil
		case state.PhaseFailed:
			// The agent holds its API up until we have read the failure;
			// down lets it go at once.
			if err := c.Down(context.Background(), false); err != nil {
				_ = c.WaitGone(context.Background())
			}
			return upError(failure(s), m)
		}
	}
}

// failure is the error a failed agent reports in its snapshot, typed again
// when it is a port conflict so that upError can name the fix.
func failure(s state.Snapshot) error {
	if pc := s.PortInUse; pc != nil {
		return &runtime.PortInUseError{Port: pc.Port, Holder: pc.Holder}
	}
	return errors.New(s.Error)
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "\t(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	return "\t" + strings.Join(lines, "\n\t")
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
