package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/runtime/kubernetes"
	"github.com/msctl/msctl/internal/runtime/local"
	"github.com/msctl/msctl/internal/runtime/pick"
	"github.com/msctl/msctl/internal/state"
)

// factory is how commands reach beyond msctl's own process: the agent, the
// runtimes, and what an agent that is gone left running. Commands call
// these rather than the packages so that tests replace them with fakes.
type factory struct {
	// connect reaches the agent of the workspace rooted at dir;
	// agent.ErrNotRunning when none runs.
	connect func(dir string) (*agent.Client, error)
	// newRuntime builds the runtime named name for m.
	newRuntime func(name string, m *manifest.Manifest, log *slog.Logger, infraLogs io.Writer) (runtime.Runtime, error)
	// leftovers reads and removes what a gone agent of m left running.
	leftovers func(m *manifest.Manifest) leftovers
}

// defaultFactory reaches the real machine.
func defaultFactory() factory {
	return factory{
		connect:    agent.Connect,
		newRuntime: newRuntime,
		leftovers:  func(m *manifest.Manifest) leftovers { return machineLeftovers{m: m} },
	}
}

// reach connects to the agent of m's workspace. When none runs it returns
// instead what a gone agent left behind: the one way ps, logs and down go
// on without an agent.
func (f factory) reach(m *manifest.Manifest) (*agent.Client, leftovers, error) {
	c, err := f.connect(m.Dir())
	if errors.Is(err, agent.ErrNotRunning) {
		return nil, f.leftovers(m), nil
	}
	return c, nil, err
}

// leftovers is what a workspace's agent left running when it went without
// stopping it (it was killed): containers outlive it, and so may the local
// processes it started.
type leftovers interface {
	// components describes what still runs and how many of those are
	// local processes rather than containers.
	components(ctx context.Context) (comps []state.Component, orphans int, err error)
	// logs calls fn with the log lines of the containers left, as the
	// agent's Logs does; agent.ErrNotRunning when there are none.
	logs(ctx context.Context, q state.LogQuery, fn func(state.LogLine) error) error
	// remove stops and removes all of it, and the data with volumes, and
	// says how many containers it removed.
	remove(ctx context.Context, volumes bool) (containers int, err error)
}

// machineLeftovers finds leftovers in the Docker engine and in the local
// runtime's process records.
type machineLeftovers struct{ m *manifest.Manifest }

var _ leftovers = machineLeftovers{}

func (l machineLeftovers) components(ctx context.Context) ([]state.Component, int, error) {
	// A killed agent's containers run on: Docker still knows them. No
	// engine answering means it holds nothing of ours.
	if dc, err := docker.ListContainers(ctx, l.m.Project); err == nil && len(dc) > 0 {
		return dc, 0, nil
	}
	// So do its local processes: saying nothing is up while they hold
	// ports and data would send the user chasing ghosts.
	orphans, err := local.Orphans(agent.StateDir(l.m.Dir()))
	if err != nil {
		return nil, 0, err
	}
	return orphanComponents(orphans), len(orphans), nil
}

// orphanComponents describes orphaned local processes as components; nothing
// probes them any more, so their health is unknown.
func orphanComponents(orphans []local.Orphan) []state.Component {
	comps := make([]state.Component, len(orphans))
	for i, o := range orphans {
		kind := state.KindService
		if o.Instance == "" {
			kind = state.KindInfra
		}
		comps[i] = state.Component{Name: o.Name, Kind: kind, State: state.StateOrphaned, Health: "unknown", Endpoint: o.Endpoint, PID: o.PID, Instances: 1}
	}
	return comps
}

func (l machineLeftovers) logs(ctx context.Context, q state.LogQuery, fn func(state.LogLine) error) error {
	// Docker still has the output of a killed agent's containers.
	if dc, err := docker.ListContainers(ctx, l.m.Project); err != nil || len(dc) == 0 {
		return agent.ErrNotRunning
	}
	var fnErr error
	err := docker.Logs(ctx, l.m.Project, docker.LogsOptions{Services: q.Services, Since: q.Since, Follow: q.Follow}, func(line state.LogLine) {
		if fnErr == nil && q.Match(line) {
			fnErr = fn(line)
		}
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

func (l machineLeftovers) remove(ctx context.Context, volumes bool) (int, error) {
	if err := removeKubernetes(ctx, l.m, volumes); err != nil {
		return 0, err
	}
	rt, err := newRuntime(local.Name, l.m, nil, io.Discard)
	if err != nil {
		return 0, err
	}
	if err := rt.Cleanup(ctx, volumes); err != nil {
		return 0, err
	}
	rtName, err := resolveRuntime(ctx, "auto", l.m)
	if err != nil || rtName != docker.Name {
		return 0, err
	}
	drt, err := docker.New(docker.Options{Project: l.m.Project, Dir: l.m.Dir()})
	if err != nil {
		return 0, err
	}
	defer drt.Close()
	left, err := drt.Containers(ctx)
	if err != nil {
		return 0, err
	}
	// Stop the infra gracefully first, so that its data stays consistent,
	// then remove everything.
	if err := drt.StopInfra(ctx, 10*time.Second); err != nil {
		return 0, err
	}
	return left, drt.Cleanup(ctx, volumes)
}

// kubernetesMark is the file in the state directory that says the workspace
// ran on the kubernetes runtime, holding the kubeconfig context it used: what
// an agent leaves in the cluster (claims and Secrets after a stop, every pod
// after it was killed) outlives it, and down without an agent must find it
// without asking a cluster on behalf of workspaces that never used one.
const kubernetesMark = "kubernetes-context"

// markKubernetes records that m's workspace runs on the kubernetes runtime.
func markKubernetes(m *manifest.Manifest) error {
	path := filepath.Join(agent.StateDir(m.Dir()), kubernetesMark)
	if err := os.WriteFile(path, []byte(m.Kubernetes.Context), 0o644); err != nil {
		return fmt.Errorf("record the kubernetes context: %w", err)
	}
	return nil
}

// removeKubernetes removes what the workspace left in the cluster the mark
// names, as the runtime's own cleanup does; with volumes the namespace goes,
// and with it the mark.
func removeKubernetes(ctx context.Context, m *manifest.Manifest, volumes bool) error {
	path := filepath.Join(agent.StateDir(m.Dir()), kubernetesMark)
	kctx, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the kubernetes context: %w", err)
	}
	km := *m
	km.Kubernetes.Context = strings.TrimSpace(string(kctx))
	rt, err := newRuntime(kubernetes.Name, &km, nil, io.Discard)
	if err != nil {
		return err
	}
	if c, ok := rt.(io.Closer); ok {
		defer c.Close()
	}
	if err := rt.Cleanup(ctx, volumes); err != nil {
		return err
	}
	if volumes {
		return forgetKubernetes(m)
	}
	return nil
}

// forgetKubernetes drops the mark once the workspace's namespace is gone.
func forgetKubernetes(m *manifest.Manifest) error {
	err := os.Remove(filepath.Join(agent.StateDir(m.Dir()), kubernetesMark))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget the kubernetes context: %w", err)
	}
	return nil
}

// checkRuntimeFlag rejects a --runtime that names no runtime.
func checkRuntimeFlag(flag string) error {
	switch flag {
	case "auto", local.Name, docker.Name, kubernetes.Name:
		return nil
	default:
		return usageError(fmt.Errorf("--runtime %q is not one of auto, local, docker, kubernetes", flag))
	}
}

// resolveRuntime turns --runtime into a runtime name; see chooseRuntime.
func resolveRuntime(ctx context.Context, flag string, m *manifest.Manifest) (string, error) {
	name, _, err := chooseRuntime(ctx, flag, m)
	return name, err
}

// chooseRuntime turns --runtime into a runtime name. auto picks docker when
// the daemon answers, holds the infra images (msctl never pulls) and it can
// build every service of m (Go ones), else local, which runs everywhere
// msctl itself does; note then says why when Docker was there but not
// chosen. An explicit docker is refused at once, before anything is built,
// when the daemon or the images are missing.
func chooseRuntime(ctx context.Context, flag string, m *manifest.Manifest) (name, note string, err error) {
	if err := checkRuntimeFlag(flag); err != nil {
		return "", "", err
	}
	images := pick.Images(m)
	switch flag {
	case docker.Name:
		if err := pick.RequireDocker(ctx, images); err != nil {
			return "", "", err
		}
		return docker.Name, "", nil
	case local.Name, kubernetes.Name: // auto never picks kubernetes: a cluster is asked for
		return flag, "", nil
	}
	for _, s := range m.Services {
		if s.Language != manifest.LangGo {
			return local.Name, "", nil
		}
	}
	p := pick.Auto(ctx, images)
	if p.Runtime == local.Name && p.DockerAnswers {
		note = "docker: " + p.Reason + "; using the local runtime"
		if len(p.Missing) > 0 {
			note = fmt.Sprintf("docker: images missing (%s); using the local runtime — %s to use docker",
				strings.Join(p.Missing, ", "), pick.GetImages(p.Missing))
		}
	}
	return p.Runtime, note, nil
}

// newRuntime makes the runtime named name for the workspace m.
func newRuntime(name string, m *manifest.Manifest, log *slog.Logger, infraLogs io.Writer) (runtime.Runtime, error) {
	switch name {
	case local.Name:
		return local.New(local.Options{StateDir: agent.StateDir(m.Dir()), Log: log, InfraLogs: infraLogs})
	case docker.Name:
		return docker.New(docker.Options{Project: m.Project, Dir: m.Dir(), Log: log, ChaosBinary: kubernetes.StaticSelf()})
	case kubernetes.Name:
		// The runtime fills in the database passwords it keeps in the
		// cluster, so the translation draws none.
		spec, err := gen.FromManifest(m, gen.Options{Password: func(string) (string, error) { return "", nil }})
		if err != nil {
			return nil, err
		}
		return kubernetes.New(kubernetes.Options{
			Spec: spec, Dir: m.Dir(), Context: m.Kubernetes.Context, Registry: m.Kubernetes.Registry,
			Log: log, CollectorBinary: kubernetes.StaticSelf(),
		})
	default:
		return nil, fmt.Errorf("unknown runtime %q", name)
	}
}

// startAgent starts an agent for m, logging to .msctl/agent.log (the
// agent's own messages) and .msctl/infra.log (Postgres, NATS, etcd).
func (f factory) startAgent(m *manifest.Manifest, env, rtName string, logTo io.Writer) (*agent.Agent, func(), error) {
	dir := agent.StateDir(m.Dir())
	infraLog, err := os.OpenFile(filepath.Join(dir, "infra.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open infra log: %w", err)
	}
	log := slog.New(slog.NewTextHandler(logTo, nil))
	rt, err := f.newRuntime(rtName, m, log, infraLog)
	if err == nil && rtName == kubernetes.Name {
		err = markKubernetes(m)
	}
	if err != nil {
		infraLog.Close()
		return nil, nil, err
	}
	a, err := agent.Start(agent.Options{Manifest: m, Env: env, Runtime: rt, Log: log})
	if err != nil {
		infraLog.Close()
		return nil, nil, err
	}
	return a, func() { infraLog.Close() }, nil
}
