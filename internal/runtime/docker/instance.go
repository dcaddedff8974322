package docker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// Variables that differ between two starts of the same configuration: they
// do not take part in the configuration hash.
var unhashedEnv = []string{"INSTANCE_ID", "ADVERTISE_ADDR"}

// adoptedTail is how much earlier output an adopted container replays.
const adoptedTail = "200"

// Start runs one instance of a built service on the workspace network, or
// adopts a running container of the service whose configuration is the same.
// Containers of the service that are neither (older configurations, exited
// ones) and that no instance of this Runtime owns are removed first, so a
// changed service is recreated alone.
func (r *Runtime) Start(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	r.mu.Lock()
	img, ok := r.images[spec.Service]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("start %s: %w", spec.Service, runtime.ErrNotBuilt)
	}
	nw, err := r.ensureNetwork(ctx)
	if err != nil {
		return nil, err
	}
	svcPort := nat.Port(strconv.Itoa(servicePort) + "/tcp")
	hashed := maps.Clone(spec.Env)
	for _, k := range unhashedEnv {
		delete(hashed, k)
	}
	hash := configHash(img, strings.Join(envList(hashed), "\n"), strconv.Itoa(spec.HostPort), nw.Name)

	if inst, err := r.adoptOrPrune(ctx, spec, hash); inst != nil || err != nil {
		return inst, err
	}

	name := r.containerName(spec.Instance)
	env := maps.Clone(spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["HTTP_ADDR"] = "0.0.0.0:" + strconv.Itoa(servicePort)
	// The gateway resolves upstreams through etcd: registered addresses must
	// be reachable from inside the network, which container names are.
	env["ADVERTISE_ADDR"] = name + ":" + strconv.Itoa(servicePort)
	cfg := &container.Config{
		Image:        img,
		Env:          envList(env),
		ExposedPorts: nat.PortSet{svcPort: {}},
		Labels: r.labels(map[string]string{
			LabelComponent: spec.Service, LabelKind: state.KindService,
			LabelConfigHash: hash, LabelInstance: spec.Instance,
		}),
	}
	host := &container.HostConfig{
		PortBindings: nat.PortMap{svcPort: {{HostIP: "127.0.0.1", HostPort: hostPortString(spec.HostPort)}}},
		ExtraHosts:   []string{"host.docker.internal:host-gateway"},
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		nw.Name: {Aliases: []string{spec.Service}},
	}}
	created, err := r.cli.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	if err != nil {
		return nil, fmt.Errorf("start %s: create container: %w", spec.Service, err)
	}
	r.claim(created.ID)
	inst := r.newInstance(spec, created.ID)
	// Wait for the next exit before starting, so that a container that exits
	// at once is not missed.
	waitCh, waitErr := r.cli.ContainerWait(inst.ctx, created.ID, container.WaitConditionNextExit)
	if err := r.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		inst.cancel()
		_ = r.removeContainer(context.WithoutCancel(ctx), created.ID)
		if isPortTaken(err) && spec.HostPort != 0 {
			return nil, &runtime.PortInUseError{Port: spec.HostPort, Holder: freeport.Holder(spec.HostPort)}
		}
		return nil, fmt.Errorf("start %s: %w", spec.Service, err)
	}
	if err := inst.describe(ctx); err != nil {
		inst.cancel()
		_ = r.removeContainer(context.WithoutCancel(ctx), created.ID)
		return nil, fmt.Errorf("start %s: %w", spec.Service, err)
	}
	go inst.follow("all")
	go inst.watch(waitCh, waitErr)
	return inst, nil
}

// adoptOrPrune returns an instance for a running, unowned container of the
// service with the wanted configuration, removing on the way the unowned
// containers of the service that cannot be adopted. It returns nil, nil when
// a new container is needed.
func (r *Runtime) adoptOrPrune(ctx context.Context, spec runtime.Spec, hash string) (runtime.Instance, error) {
	cs, err := r.list(ctx, map[string]string{LabelComponent: spec.Service, LabelKind: state.KindService})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Service, err)
	}
	for _, c := range cs {
		if c.State == "running" && c.Labels[LabelConfigHash] == hash && r.tryClaim(c.ID) {
			inst := r.newInstance(spec, c.ID)
			if err := inst.describe(ctx); err != nil {
				inst.cancel()
				r.release(c.ID)
				return nil, fmt.Errorf("start %s: adopt %s: %w", spec.Service, shortID(c.ID), err)
			}
			r.log.Debug("adopted", "service", spec.Service, "container", shortID(c.ID))
			waitCh, waitErr := r.cli.ContainerWait(inst.ctx, c.ID, container.WaitConditionNotRunning)
			go inst.follow(adoptedTail)
			go inst.watch(waitCh, waitErr)
			return inst, nil
		}
	}
	for _, c := range cs {
		if c.State == "running" && c.Labels[LabelConfigHash] == hash || r.isClaimed(c.ID) {
			continue // another replica's, now or soon
		}
		r.log.Debug("removing", "service", spec.Service, "container", shortID(c.ID), "state", c.State)
		if err := r.removeContainer(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("start %s: %w", spec.Service, err)
		}
	}
	return nil, nil
}

// tryClaim claims a container unless someone in this Runtime already has.
func (r *Runtime) tryClaim(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claimed[id] {
		return false
	}
	r.claimed[id] = true
	return true
}

// instance is one service container.
type instance struct {
	r      *Runtime
	id     string
	output func(stream, line string)

	// ctx ends when the Runtime closes or the instance is gone.
	ctx    context.Context
	cancel context.CancelFunc

	info     runtime.InstanceInfo
	logsDone chan struct{}
	done     chan struct{}
	exit     runtime.Exit
	stopOnce sync.Once
}

var _ runtime.Instance = (*instance)(nil)

func (r *Runtime) newInstance(spec runtime.Spec, id string) *instance {
	ctx, cancel := context.WithCancel(r.ctx)
	return &instance{
		r: r, id: id, output: spec.Output, ctx: ctx, cancel: cancel,
		info:     runtime.InstanceInfo{ID: spec.Instance, Container: id},
		logsDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// describe fills in the endpoint and start time from the engine.
func (in *instance) describe(ctx context.Context) error {
	info, err := in.r.cli.ContainerInspect(ctx, in.id)
	if err != nil {
		return fmt.Errorf("inspect container: %w", err)
	}
	port := publishedPorts(info)[nat.Port(strconv.Itoa(servicePort)+"/tcp")]
	if port == "" {
		return errors.New("container has no port published on 127.0.0.1")
	}
	in.info.Endpoint = net.JoinHostPort("127.0.0.1", port)
	if id := info.Config.Labels[LabelInstance]; id != "" {
		in.info.ID = id // an adopted container keeps the identity it registered with
	}
	if info.State != nil {
		if t, err := time.Parse(time.RFC3339Nano, info.State.StartedAt); err == nil {
			in.info.StartedAt = t
		}
	}
	return nil
}

func (in *instance) Info() runtime.InstanceInfo { return in.info }
func (in *instance) Done() <-chan struct{}      { return in.done }
func (in *instance) Exit() runtime.Exit         { return in.exit }

// Stop stops the container with SIGTERM, SIGKILL after grace, and returns
// once it is removed. When ctx ends first (a forced stop) the container is
// killed and removed at once rather than left running.
func (in *instance) Stop(ctx context.Context, grace time.Duration) error {
	var err error
	in.stopOnce.Do(func() { err = in.r.stopContainer(ctx, in.id, grace) })
	if ctx.Err() == nil && err != nil {
		return fmt.Errorf("stop container %s: %w", shortID(in.id), err)
	}
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
	}
	kctx, cancel := forced(ctx)
	defer cancel()
	if err := in.r.removeContainer(kctx, in.id); err != nil {
		return err
	}
	select {
	case <-in.done:
	case <-kctx.Done():
	}
	return nil
}

// follow passes the container's output to the instance's Output line by
// line until the container stops.
func (in *instance) follow(tail string) {
	defer close(in.logsDone)
	if in.output == nil {
		return
	}
	rc, err := in.r.cli.ContainerLogs(in.ctx, in.id, container.LogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: true, Tail: tail,
	})
	if err != nil {
		return
	}
	defer rc.Close()
	demux(rc, in.output)
}

// demux splits Docker's multiplexed log stream into lines per stream.
func demux(rc io.Reader, emit func(stream, line string)) {
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	var wg sync.WaitGroup
	for _, p := range []struct {
		stream string
		r      *io.PipeReader
	}{{"stdout", outR}, {"stderr", errR}} {
		wg.Go(func() {
			sc := bufio.NewScanner(p.r)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				emit(p.stream, sc.Text())
			}
			_, _ = io.Copy(io.Discard, p.r) // a line too long: drain, never block the writer
		})
	}
	_, err := stdcopy.StdCopy(outW, errW, rc)
	outW.CloseWithError(err)
	errW.CloseWithError(err)
	wg.Wait()
}

// watch records how the container ended, lets its output drain, removes it
// and then reports the instance done.
func (in *instance) watch(waitCh <-chan container.WaitResponse, errCh <-chan error) {
	defer close(in.done)
	defer in.cancel()
	var ex runtime.Exit
	select {
	case w := <-waitCh:
		ex = exitOf(w.StatusCode)
		if w.Error != nil && w.Error.Message != "" {
			ex.Err = errors.New(w.Error.Message)
		}
	case err := <-errCh:
		if in.r.ctx.Err() != nil {
			// The Runtime closed: the container runs on, unwatched.
			in.exit = runtime.Exit{Code: -1, Err: errors.New("no longer watched"), At: time.Now()}
			return
		}
		ex = runtime.Exit{Code: -1, Err: fmt.Errorf("wait for container: %w", err)}
	}
	ex.At = time.Now()
	select {
	case <-in.logsDone:
	case <-time.After(2 * time.Second):
	}
	_ = in.r.removeContainer(context.Background(), in.id)
	in.exit = ex
}

// exitOf turns a container status into an Exit: above 128 is a signal.
func exitOf(status int64) runtime.Exit {
	if status > 128 && status < 128+65 {
		return runtime.Exit{Code: -1, Err: fmt.Errorf("killed by signal %d", status-128)}
	}
	return runtime.Exit{Code: int(status)}
}
