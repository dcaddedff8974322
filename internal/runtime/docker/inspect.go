package docker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// ListContainers describes a workspace from Docker alone, for `ps` when no
// agent runs (it was killed, or never started by this machine's user): one
// Component per infra component and service, infra first. Services are
// probed at manifest.DefaultHealth through their published port.
func ListContainers(ctx context.Context, project string) ([]state.Component, error) {
	cli, err := NewClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	cs, err := listWorkspace(ctx, cli, project, nil)
	if err != nil {
		return nil, err
	}
	byName := map[string]*state.Component{}
	var order []string
	for _, c := range cs {
		if c.Labels[LabelKind] == kindChaos {
			continue // msctl's own, not the workspace's
		}
		name := c.Labels[LabelComponent]
		comp := byName[name]
		if comp == nil {
			comp = &state.Component{Name: name, Kind: c.Labels[LabelKind], State: state.StateStopped}
			byName[name] = comp
			order = append(order, name)
		}
		st, health := containerState(ctx, cli, c)
		if c.State == "running" {
			comp.Instances++
		}
		// The component shows its best instance: a healthy replica wins.
		if comp.Container == "" || rank(st) > rank(comp.State) {
			comp.State, comp.Health = st, health
			comp.Container = shortID(c.ID)
			comp.Endpoint = endpointOf(name, c)
			comp.StartedAt = time.Unix(c.Created, 0)
			if info, err := cli.ContainerInspect(ctx, c.ID); err == nil && info.State != nil {
				if t, err := time.Parse(time.RFC3339Nano, info.State.StartedAt); err == nil {
					comp.StartedAt = t
				}
				comp.Restarts = info.RestartCount
			}
		}
	}
	infra := []string{runtime.Postgres, runtime.Broker, runtime.Registry}
	sort.SliceStable(order, func(i, j int) bool {
		ii, ij := slices.Index(infra, order[i]), slices.Index(infra, order[j])
		if ii < 0 {
			ii = len(infra)
		}
		if ij < 0 {
			ij = len(infra)
		}
		if ii != ij {
			return ii < ij
		}
		return order[i] < order[j]
	})
	out := make([]state.Component, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	return out, nil
}

func rank(st state.State) int {
	switch st {
	case state.StateHealthy:
		return 4
	case state.StateWaiting, state.StateStarting:
		return 3
	case state.StateUnhealthy:
		return 2
	case state.StateCrashed:
		return 1
	}
	return 0
}

// containerState maps a container to a component state: Docker's health
// status where the image has a healthcheck, else a probe from the host.
func containerState(ctx context.Context, cli *client.Client, c container.Summary) (state.State, string) {
	switch c.State {
	case "created":
		return state.StateStarting, ""
	case "running":
	case "exited", "dead":
		return state.StateCrashed, c.Status
	default:
		return state.StateStopped, c.Status
	}
	switch {
	case strings.Contains(c.Status, "(healthy)"):
		return state.StateHealthy, "ok"
	case strings.Contains(c.Status, "(health: starting)"):
		return state.StateWaiting, "health: starting"
	case strings.Contains(c.Status, "(unhealthy)"):
		return state.StateUnhealthy, "healthcheck failing"
	}
	ports := summaryPorts(c)
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var err error
	switch c.Labels[LabelKind] {
	case state.KindService:
		err = httpOK("http://127.0.0.1:" + ports[servicePort] + manifest.DefaultHealth)(pctx)
	default:
		p := ports[4222]
		if p == "" {
			for _, v := range ports {
				p = v
				break
			}
		}
		var d net.Dialer
		var conn net.Conn
		if conn, err = d.DialContext(pctx, "tcp", net.JoinHostPort("127.0.0.1", p)); err == nil {
			conn.Close()
		}
	}
	if err != nil {
		return state.StateUnhealthy, err.Error()
	}
	return state.StateHealthy, "ok"
}

// summaryPorts maps private ports to host ports published on 127.0.0.1.
func summaryPorts(c container.Summary) map[uint16]string {
	out := map[uint16]string{}
	for _, p := range c.Ports {
		if p.IP == "127.0.0.1" && p.PublicPort != 0 {
			out[p.PrivatePort] = fmt.Sprint(p.PublicPort)
		}
	}
	return out
}

// endpointOf renders an endpoint the way the orchestrator does.
func endpointOf(component string, c container.Summary) string {
	ports := summaryPorts(c)
	hp := func(p uint16) string {
		if ports[p] == "" {
			return ""
		}
		return net.JoinHostPort("127.0.0.1", ports[p])
	}
	switch component {
	case runtime.Postgres:
		return hp(5432)
	case runtime.Broker:
		if e := hp(4222); e != "" {
			return "nats://" + e
		}
	case runtime.Registry:
		if e := hp(2379); e != "" {
			return "http://" + e
		}
	default:
		return hp(servicePort)
	}
	return ""
}

// LogsOptions select the output Logs reads.
type LogsOptions struct {
	// Services (or infra components) to read; empty reads all.
	Services []string
	// Tail is how many lines per container; 0 means all.
	Tail int
	// Since drops lines older than this; zero keeps all.
	Since time.Time
	// Follow keeps reading until ctx ends.
	Follow bool
}

// Logs reads the output of a workspace's containers from Docker, for `logs`
// when no agent runs. Without Follow lines come merged in time order; with
// it, each as it arrives. emit is never called concurrently.
func Logs(ctx context.Context, project string, opts LogsOptions, emit func(state.LogLine)) error {
	cli, err := NewClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	cs, err := listWorkspace(ctx, cli, project, nil)
	if err != nil {
		return err
	}
	tail := "all"
	if opts.Tail > 0 {
		tail = fmt.Sprint(opts.Tail)
	}
	var since string
	if !opts.Since.IsZero() {
		since = fmt.Sprint(opts.Since.Unix())
	}
	var mu sync.Mutex
	var lines []state.LogLine
	add := func(l state.LogLine) {
		mu.Lock()
		defer mu.Unlock()
		if opts.Follow {
			emit(l)
			return
		}
		lines = append(lines, l)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		name := c.Labels[LabelComponent]
		if len(opts.Services) > 0 && !slices.Contains(opts.Services, name) {
			continue
		}
		wg.Go(func() {
			rc, err := cli.ContainerLogs(ctx, c.ID, container.LogsOptions{
				ShowStdout: true, ShowStderr: true, Timestamps: true,
				Follow: opts.Follow, Tail: tail, Since: since,
			})
			if err != nil {
				return
			}
			defer rc.Close()
			demux(rc, func(stream, text string) {
				add(logLine(name, stream, text))
			})
		})
	}
	wg.Wait()
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
	for _, l := range lines {
		emit(l)
	}
	return ctx.Err()
}

// logLine parses a line Docker prefixed with its RFC 3339 timestamp.
func logLine(service, stream, text string) state.LogLine {
	l := state.LogLine{Service: service, Stream: stream, Text: text}
	if ts, rest, ok := strings.Cut(text, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, l.Text = t, rest
		}
	}
	l.Level = state.LevelOf(l.Text)
	return l
}

// collectLogs passes the last lines of a container's output to emit.
func (r *Runtime) collectLogs(ctx context.Context, id, tail string, emit func(stream, line string)) error {
	rc, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return err
	}
	defer rc.Close()
	demux(rc, emit)
	return nil
}

func sortedPorts(m map[nat.Port]int) []nat.Port {
	ps := make([]nat.Port, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func clientNotFound(err error) bool { return client.IsErrNotFound(err) }
