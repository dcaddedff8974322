// Package docker runs a workspace in local Docker containers through the
// Engine API: one user network per workspace, infra from images with data in
// named volumes, services from minimal images built out of host-compiled
// static binaries. Everything it creates carries the workspace label, so a
// workspace can be listed, adopted or removed whatever process created it.
//
// Containers outlive the agent that started them. A new Runtime adopts a
// running container whose configuration hash matches what it would create,
// so a second `msctl up` leaves unchanged containers alone and an agent that
// was killed leaves nothing a later `up` cannot clean.
package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/internal/runtime"
)

// Labels put on every container, network, volume and image of a workspace.
const (
	LabelWorkspace  = "dev.msctl.workspace"
	LabelDir        = "dev.msctl.dir"
	LabelComponent  = "dev.msctl.component"
	LabelKind       = "dev.msctl.kind"
	LabelConfigHash = "dev.msctl.config-hash"
	LabelInstance   = "dev.msctl.instance"
	// labelOTLPPort, on the network, is the port the agent's OTLP receiver
	// listens on: containers have it in their environment, so it must stay
	// the same for as long as they may be adopted.
	labelOTLPPort = "dev.msctl.otlp-port"
	// labelPGPassword, on the Postgres volume, is the superuser password the
	// data directory was initialised with.
	labelPGPassword = "dev.msctl.pg-password"
)

// servicePort is where every service listens inside its container.
const servicePort = 8080

// hashVersion changes whenever the way containers are configured changes, so
// that containers made by an older msctl are recreated rather than adopted.
const hashVersion = "1"

// Runtime runs one workspace in Docker.
type Runtime struct {
	cli     *client.Client
	project string
	dir     string
	log     *slog.Logger
	chaos   string // Options.ChaosBinary

	// ctx outlives every call: instance watchers and log followers run on it
	// until Close.
	ctx    context.Context
	cancel context.CancelFunc

	netMu sync.Mutex // serialises network creation

	// restartMu orders RestartInfra against itself and StopInfra, so a
	// restart never brings back what StopInfra stopped.
	restartMu sync.Mutex

	mu      sync.Mutex
	images  map[string]string // service → built image tag
	claimed map[string]bool   // container ids this Runtime owns or adopted
	infra   *infraState

	dbMu sync.Mutex // serialises CREATE ROLE/DATABASE; guards the fields below
	// pg is the superuser connection EnsureDatabase keeps, to pgDSN.
	pg    *pgx.Conn
	pgDSN string
	// provisioned are the services whose database exists in the Postgres
	// of provisionedFor, the infra StartInfra (or RestartInfra) last set up.
	provisionedFor *infraState
	provisioned    map[string]bool
}

var (
	_ runtime.Runtime      = (*Runtime)(nil)
	_ runtime.Pruner       = (*Runtime)(nil)
	_ runtime.OTLPListener = (*Runtime)(nil)
	_ runtime.ChaosHost    = (*Runtime)(nil)
)

// Options configure a Runtime: the workspace it runs, named explicitly so
// that the runtime depends on what it uses, not on the whole manifest.
type Options struct {
	// Project names the workspace: its containers, network and volumes.
	Project string
	// Dir is the workspace's directory, recorded on the network so that two
	// checkouts of one project do not share it.
	Dir string
	Log *slog.Logger
	// Client is the Engine API client; nil connects with NewClient.
	Client *client.Client
	// ChaosBinary is a static linux msctl executable, run in the chaos
	// proxy's container; empty leaves the workspace without chaos.
	ChaosBinary string
}

// NewClient connects to the engine DOCKER_HOST names (default: the local
// socket), negotiating the API version so that older engines answer.
func NewClient() (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return c, nil
}

// New returns a Runtime for the workspace opts names.
func New(opts Options) (*Runtime, error) {
	if opts.Project == "" {
		return nil, errors.New("docker runtime needs a project name")
	}
	cli := opts.Client
	if cli == nil {
		var err error
		if cli, err = NewClient(); err != nil {
			return nil, err
		}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		cli:     cli,
		project: opts.Project,
		dir:     opts.Dir,
		chaos:   opts.ChaosBinary,
		log:     opts.Log.With("runtime", "docker"),
		ctx:     ctx,
		cancel:  cancel,
		images:  map[string]string{},
		claimed: map[string]bool{},
	}, nil
}

// Name is the runtime's name, as --runtime takes it.
const Name = "docker"

// Name is "docker".
func (r *Runtime) Name() string { return Name }

// Close stops following containers and closes the client. Containers keep
// running: stopping them is Stop's, StopInfra's and Cleanup's business.
func (r *Runtime) Close() error {
	r.cancel()
	r.dropPG()
	return r.cli.Close()
}

// NetworkName is the user network of a project's workspace.
func NetworkName(project string) string { return "msctl-" + project }

func (r *Runtime) containerName(suffix string) string {
	return "msctl-" + r.project + "-" + suffix
}

func (r *Runtime) volumeName(component string) string {
	return "msctl-" + r.project + "-" + component + "-data"
}

// labels returns the workspace labels plus extra ones.
func (r *Runtime) labels(extra map[string]string) map[string]string {
	l := map[string]string{LabelWorkspace: r.project, LabelDir: r.dir}
	maps.Copy(l, extra)
	return l
}

// ensureNetwork creates the workspace network unless it exists, and returns
// it. A network of that name that belongs to another workspace directory is
// an error rather than something to share.
func (r *Runtime) ensureNetwork(ctx context.Context) (network.Inspect, error) {
	r.netMu.Lock()
	defer r.netMu.Unlock()
	name := NetworkName(r.project)
	nw, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err == nil {
		if nw.Labels[LabelWorkspace] != r.project || nw.Labels[LabelDir] != r.dir {
			return nw, fmt.Errorf("network %s exists but belongs to workspace %q in %q; run msctl down there or remove it with docker network rm %s",
				name, nw.Labels[LabelWorkspace], nw.Labels[LabelDir], name)
		}
		return nw, nil
	}
	if !client.IsErrNotFound(err) {
		return nw, fmt.Errorf("inspect network %s: %w", name, err)
	}
	gw, err := r.hostGatewayIP(ctx)
	if err != nil {
		return nw, err
	}
	port, err := freePortOn(gw)
	if err != nil {
		return nw, err
	}
	_, err = r.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		Labels: r.labels(map[string]string{labelOTLPPort: strconv.Itoa(port)}),
	})
	if err != nil {
		return nw, fmt.Errorf("create network %s: %w", name, err)
	}
	nw, err = r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return nw, fmt.Errorf("inspect network %s: %w", name, err)
	}
	return nw, nil
}

// hostGatewayIP is the address "host-gateway" stands for in ExtraHosts: the
// gateway of Docker's default bridge, an address of this host that every
// container can reach.
func (r *Runtime) hostGatewayIP(ctx context.Context) (string, error) {
	nw, err := r.cli.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect the default bridge network: %w", err)
	}
	for _, c := range nw.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway, nil
		}
	}
	// The engine often leaves the default bridge's gateway out of IPAM; it is
	// then the IPv4 address of the bridge interface itself.
	if name := nw.Options["com.docker.network.bridge.name"]; name != "" {
		if ifc, err := net.InterfaceByName(name); err == nil {
			addrs, _ := ifc.Addrs()
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
					return ipn.IP.String(), nil
				}
			}
		}
	}
	return "", errors.New("the default bridge network has no IPv4 gateway")
}

func freePortOn(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// OTLPListenAddr is where the agent's OTLP/HTTP receiver should listen so
// that containers reach it as host.docker.internal: the host-gateway address
// (not 0.0.0.0: only containers need it) and a port kept on the workspace
// network, so that the endpoint in adopted containers' environment stays
// valid across agents.
func (r *Runtime) OTLPListenAddr(ctx context.Context) (string, error) {
	nw, err := r.ensureNetwork(ctx)
	if err != nil {
		return "", err
	}
	gw, err := r.hostGatewayIP(ctx)
	if err != nil {
		return "", err
	}
	port := nw.Labels[labelOTLPPort]
	if port == "" {
		return "", fmt.Errorf("network %s has no %s label; remove it with msctl down", nw.Name, labelOTLPPort)
	}
	return net.JoinHostPort(gw, port), nil
}

// configHash identifies a container configuration: equal hashes mean an
// existing container can be adopted instead of recreated.
func configHash(parts ...string) string {
	h := sha256.New()
	h.Write([]byte(hashVersion))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// envList renders env sorted, as Docker wants it and as hashing needs it.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// isPortTaken tells whether a create or start error is a host port conflict.
func isPortTaken(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use")
}
