package docker

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// Ports and paths of the infra images' contracts (the official images and
// the offline stand-ins honour the same ones).
const (
	pgPort      = "5432/tcp"
	natsPort    = "4222/tcp"
	natsMonPort = "8222/tcp"
	etcdPort    = "2379/tcp"

	pgSuperuser = "postgres"
)

// natsConfPath is where the broker's configuration is written.
const natsConfPath = "/etc/msctl/nats.conf"

// natsConf configures the broker: JetStream syncs every write to disk
// before acknowledging it, so an acknowledged event survives the container
// being killed, not only a graceful stop (Docker's default flush interval
// would lose up to two minutes of a killed broker's writes).
const natsConf = `port: 4222
http_port: 8222
jetstream {
  store_dir: "/data"
  sync_interval: always
}
`

// healthGrace is how long failing healthchecks do not count: a first start
// initialises the data directory before the server listens.
const healthGrace = time.Minute

// infraTimeout bounds how long StartInfra waits for the infra to answer; a
// first start initialises the Postgres data directory.
const infraTimeout = 2 * time.Minute

// infraState is what StartInfra learned, for EnsureDatabase and later calls.
type infraState struct {
	endpoints  runtime.Infra
	pgHost     string // host:port of Postgres as the host reaches it
	pgPassword string
	spec       runtime.InfraSpec
	// published is, per component, the host port of each container port,
	// which RestartInfra publishes the new container on again.
	published map[string]map[nat.Port]string
}

// infraDef is how one infra container is configured.
type infraDef struct {
	name   string
	image  string
	env    map[string]string
	cmd    []string
	ports  map[nat.Port]int // container port → fixed host port, 0 = free
	volume string
	target string // where the volume is mounted
	health *container.HealthConfig
	// files are written into the container before it starts, by absolute
	// path: configuration the image takes no flag for.
	files map[string]string
	// kind labels the container: state.KindInfra unless set (the chaos
	// proxy's is kindChaos).
	kind string
	// pinned are host ports to publish on where ports says any free one:
	// those a replaced container had, so addresses handed out stay valid.
	// They are no part of the configuration hash: a free port was asked for.
	pinned map[nat.Port]string
}

func (d infraDef) hash(networkName string) string {
	parts := []string{d.image, strings.Join(envList(d.env), "\n"), strings.Join(d.cmd, " "), d.volume, d.target, networkName}
	for _, f := range slices.Sorted(maps.Keys(d.files)) {
		parts = append(parts, f+"="+d.files[f])
	}
	for _, p := range sortedPorts(d.ports) {
		parts = append(parts, string(p)+"="+strconv.Itoa(d.ports[p]))
	}
	if d.health != nil {
		parts = append(parts, strings.Join(d.health.Test, " "))
	}
	return configHash(parts...)
}

// infraDefs configures the infra containers of spec, in start order.
func (r *Runtime) infraDefs(spec runtime.InfraSpec, pgPassword string) []infraDef {
	return []infraDef{
		{
			name:   runtime.Postgres,
			image:  orDefault(spec.PostgresImage, "postgres:15"),
			env:    map[string]string{"POSTGRES_PASSWORD": pgPassword},
			ports:  map[nat.Port]int{pgPort: spec.PostgresPort},
			volume: r.volumeName(runtime.Postgres),
			target: "/var/lib/postgresql/data",
			health: &container.HealthConfig{
				Test:     []string{"CMD", "pg_isready", "-U", pgSuperuser, "-h", "127.0.0.1"},
				Interval: time.Second, Timeout: 3 * time.Second, Retries: 3, StartPeriod: healthGrace,
			},
		},
		{
			// The official image is FROM scratch: no shell for a HEALTHCHECK,
			// so readiness is the monitoring port's /healthz, probed from here.
			// nats-server has no flag for JetStream's sync interval, so the
			// whole configuration is a file of ours; the image's entrypoint
			// stays the contract.
			name:   runtime.Broker,
			image:  orDefault(spec.BrokerImage, "nats:2.15"),
			cmd:    []string{"--config", natsConfPath},
			files:  map[string]string{natsConfPath: natsConf},
			ports:  map[nat.Port]int{natsPort: spec.BrokerPort, natsMonPort: 0},
			volume: r.volumeName(runtime.Broker),
			target: "/data",
		},
		{
			name:  runtime.Registry,
			image: orDefault(spec.RegistryImage, "bitnami/etcd:3.5"),
			env: map[string]string{
				"ALLOW_NONE_AUTHENTICATION":  "yes",
				"ETCD_LISTEN_CLIENT_URLS":    "http://0.0.0.0:2379",
				"ETCD_ADVERTISE_CLIENT_URLS": "http://" + runtime.Registry + ":2379",
			},
			ports:  map[nat.Port]int{etcdPort: spec.RegistryPort},
			volume: r.volumeName(runtime.Registry),
			target: "/bitnami/etcd",
			health: &container.HealthConfig{
				Test:     []string{"CMD", "etcdctl", "endpoint", "health"},
				Interval: time.Second, Timeout: 3 * time.Second, Retries: 3, StartPeriod: healthGrace,
			},
		},
	}
}

// StartInfra starts (or adopts) Postgres, NATS with JetStream and etcd on
// the workspace network and returns once all three answer through their
// published ports.
func (r *Runtime) StartInfra(ctx context.Context, spec runtime.InfraSpec) (runtime.Infra, error) {
	nw, err := r.ensureNetwork(ctx)
	if err != nil {
		return runtime.Infra{}, err
	}
	pgPassword, err := r.ensurePGVolume(ctx)
	if err != nil {
		return runtime.Infra{}, err
	}
	for _, c := range []string{runtime.Broker, runtime.Registry} {
		if err := r.ensureVolume(ctx, c, nil); err != nil {
			return runtime.Infra{}, err
		}
	}
	defs := r.infraDefs(spec, pgPassword)
	ctx, cancel := context.WithTimeout(ctx, infraTimeout)
	defer cancel()
	hostPorts := make([]map[nat.Port]string, len(defs))
	errs := make([]error, len(defs))
	var wg sync.WaitGroup
	for i, d := range defs {
		wg.Go(func() {
			ports, err := r.ensureInfra(ctx, d, nw.Name)
			if err == nil {
				err = r.waitInfra(ctx, d.name, ports, pgPassword)
			}
			hostPorts[i], errs[i] = ports, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return runtime.Infra{}, err
	}
	published := map[string]map[nat.Port]string{}
	for i, d := range defs {
		published[d.name] = hostPorts[i]
	}

	inf := runtime.Infra{
		Host: hostEndpoints(published),
		Services: runtime.Endpoints{
			Postgres: runtime.Postgres + ":5432",
			NATSURL:  "nats://" + runtime.Broker + ":4222",
			Etcd:     []string{"http://" + runtime.Registry + ":2379"},
		},
	}
	if spec.OTLPHostAddr != "" {
		host, port, err := net.SplitHostPort(spec.OTLPHostAddr)
		if err != nil {
			return runtime.Infra{}, fmt.Errorf("OTLP receiver address %q: %w", spec.OTLPHostAddr, err)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			r.log.Warn("the OTLP receiver listens on loopback, containers cannot reach it; listen on OTLPListenAddr", "addr", spec.OTLPHostAddr)
		}
		inf.Host.OTLP = "http://" + spec.OTLPHostAddr
		inf.Services.OTLP = "http://host.docker.internal:" + port
	}
	r.mu.Lock()
	r.infra = &infraState{endpoints: inf, pgHost: inf.Host.Postgres, pgPassword: pgPassword, spec: spec, published: published}
	r.mu.Unlock()
	return inf, nil
}

// hostEndpoints are the infra endpoints on the host's loopback, from the
// host ports each component's container is published on.
func hostEndpoints(published map[string]map[nat.Port]string) runtime.Endpoints {
	loop := func(c string, p nat.Port) string { return net.JoinHostPort("127.0.0.1", published[c][p]) }
	return runtime.Endpoints{
		Postgres: loop(runtime.Postgres, pgPort),
		NATSURL:  "nats://" + loop(runtime.Broker, natsPort),
		Etcd:     []string{"http://" + loop(runtime.Registry, etcdPort)},
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ensurePGVolume creates the Postgres volume unless it exists and returns
// the superuser password its data directory was (or will be) initialised
// with, which is kept as a label of the volume.
func (r *Runtime) ensurePGVolume(ctx context.Context) (string, error) {
	name := r.volumeName(runtime.Postgres)
	v, err := r.cli.VolumeInspect(ctx, name)
	if err == nil {
		pw := v.Labels[labelPGPassword]
		if pw == "" {
			return "", fmt.Errorf("volume %s has no %s label; remove it with msctl down --volumes", name, labelPGPassword)
		}
		return pw, nil
	}
	if !isNotFound(err) {
		return "", fmt.Errorf("inspect volume %s: %w", name, err)
	}
	pw := randomHex(16)
	if err := r.ensureVolume(ctx, runtime.Postgres, map[string]string{labelPGPassword: pw}); err != nil {
		return "", err
	}
	return pw, nil
}

func (r *Runtime) ensureVolume(ctx context.Context, component string, extra map[string]string) error {
	name := r.volumeName(component)
	if _, err := r.cli.VolumeInspect(ctx, name); err == nil {
		return nil
	}
	labels := r.labels(map[string]string{LabelComponent: component})
	for k, v := range extra {
		labels[k] = v
	}
	if _, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// ensureInfra adopts the running container of d when its configuration is
// unchanged, else replaces it, and returns the published host ports.
func (r *Runtime) ensureInfra(ctx context.Context, d infraDef, networkName string) (map[nat.Port]string, error) {
	hash := d.hash(networkName)
	existing, err := r.list(ctx, map[string]string{LabelComponent: d.name})
	if err != nil {
		return nil, err
	}
	for _, c := range existing {
		if c.State == "running" && c.Labels[LabelConfigHash] == hash {
			info, err := r.cli.ContainerInspect(ctx, c.ID)
			if err != nil {
				return nil, fmt.Errorf("inspect %s: %w", d.name, err)
			}
			r.claim(c.ID)
			r.log.Debug("adopted", "component", d.name, "container", shortID(c.ID))
			return publishedPorts(info), nil
		}
		if err := r.removeContainer(ctx, c.ID); err != nil {
			return nil, err
		}
	}

	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for p, host := range d.ports {
		exposed[p] = struct{}{}
		bindings[p] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: cmp.Or(hostPortString(host), d.pinned[p])}}
	}
	cfg := &container.Config{
		Image:        d.image,
		Env:          envList(d.env),
		Cmd:          d.cmd,
		ExposedPorts: exposed,
		Healthcheck:  d.health,
		Labels: r.labels(map[string]string{
			LabelComponent: d.name, LabelKind: cmp.Or(d.kind, state.KindInfra), LabelConfigHash: hash,
		}),
	}
	host := &container.HostConfig{PortBindings: bindings}
	if d.volume != "" {
		host.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: d.volume, Target: d.target}}
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		networkName: {Aliases: []string{d.name}},
	}}
	id, err := r.createAndStart(ctx, cfg, host, netCfg, r.containerName(d.name), d.ports, d.files)
	if err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", d.name, d.image, err)
	}
	info, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", d.name, err)
	}
	return publishedPorts(info), nil
}

// waitInfra returns once one infra component answers through its published
// port, or with its last output when its container exits first.
func (r *Runtime) waitInfra(ctx context.Context, name string, ports map[nat.Port]string, pgPassword string) error {
	var probe func(context.Context) error
	switch name {
	case runtime.Postgres:
		dsn := superDSN(net.JoinHostPort("127.0.0.1", ports[pgPort]), pgPassword, "postgres")
		probe = func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			return conn.Ping(ctx)
		}
	case runtime.Broker:
		probe = httpOK("http://127.0.0.1:" + ports[natsMonPort] + "/healthz")
	case runtime.Registry:
		probe = httpOK("http://127.0.0.1:" + ports[etcdPort] + "/health")
	}
	var last error
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = probe(pctx)
		cancel()
		if last == nil {
			return nil
		}
		if attempt%8 == 7 {
			if exited, tail := r.exitedWithTail(ctx, name); exited {
				return fmt.Errorf("%s exited before it was ready; last output:\n%s", name, tail)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last probe: %v)", name, ctx.Err(), last)
		case <-time.After(infraPoll):
		}
	}
}

// infraPoll is how often waitInfra probes: a probe is a refused connection
// or one small request, and every interval is latency added to an up.
const infraPoll = 50 * time.Millisecond

var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func httpOK(u string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return nil
	}
}

// exitedWithTail tells whether the container of an infra component has
// exited, and if so its last lines of output.
func (r *Runtime) exitedWithTail(ctx context.Context, name string) (bool, string) {
	cs, err := r.list(ctx, map[string]string{LabelComponent: name})
	if err != nil || len(cs) == 0 || cs[0].State == "running" || cs[0].State == "created" {
		return false, ""
	}
	var b strings.Builder
	_ = r.collectLogs(ctx, cs[0].ID, "20", func(_, line string) {
		b.WriteString("\t" + line + "\n")
	})
	return true, b.String()
}

func superDSN(hostport, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(pgSuperuser, password),
		Host:     hostport,
		Path:     "/" + db,
		RawQuery: "sslmode=disable&connect_timeout=5",
	}
	return u.String()
}

// EnsureDatabase creates the role and database of one service (once) in the
// Postgres container, connecting through its published port as the
// superuser, and returns the DSN services use on the workspace network. The
// role's password is derived from the superuser's, so that it is the same on
// every run and adopted containers keep working.
func (r *Runtime) EnsureDatabase(ctx context.Context, service string) (string, error) {
	r.mu.Lock()
	inf := r.infra
	r.mu.Unlock()
	if inf == nil {
		return "", errors.New("ensure database: infra is not started")
	}
	mac := hmac.New(sha256.New, []byte(inf.pgPassword))
	mac.Write([]byte("role:" + service))
	password := hex.EncodeToString(mac.Sum(nil))[:32]

	r.dbMu.Lock()
	defer r.dbMu.Unlock()
	// What this infra provisioned stays provisioned: an up with nothing
	// changed asks again for every service and need not wait for Postgres.
	if r.provisionedFor != inf {
		r.provisionedFor, r.provisioned = inf, map[string]bool{}
	}
	if !r.provisioned[service] {
		if err := r.provision(ctx, inf, service, password); err != nil {
			return "", err
		}
		r.provisioned[service] = true
	}
	u := url.URL{
		Scheme: "postgres", User: url.UserPassword(service, password),
		Host: runtime.Postgres + ":5432", Path: "/" + service, RawQuery: "sslmode=disable",
	}
	return u.String(), nil
}

// provision creates the role and database of service on the superuser
// connection the Runtime keeps (dbMu held): a connection per service, each
// authenticating anew, put most of a second between the infra being ready
// and the last service starting. A kept connection that fails (Postgres
// was restarted) is replaced once.
func (r *Runtime) provision(ctx context.Context, inf *infraState, service, password string) error {
	dsn := superDSN(inf.pgHost, inf.pgPassword, "postgres")
	for fresh := false; ; fresh = true {
		if r.pg == nil || r.pgDSN != dsn || fresh {
			r.closePG()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return fmt.Errorf("ensure database %s: connect: %w", service, err)
			}
			r.pg, r.pgDSN, fresh = conn, dsn, true
		}
		err := pgserver.Provision(ctx, r.pg, service, service, password)
		if err == nil || fresh || ctx.Err() != nil {
			return err
		}
	}
}

// dropPG closes the kept superuser connection before Postgres stops: a
// smart shutdown waits for every session to end.
func (r *Runtime) dropPG() {
	r.dbMu.Lock()
	r.closePG()
	r.dbMu.Unlock()
}

// closePG closes the kept superuser connection (dbMu held).
func (r *Runtime) closePG() {
	if r.pg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = r.pg.Close(ctx)
	r.pg = nil
}

// StopInfra stops the infra containers gracefully; their data stays in the
// volumes and the containers stay until Cleanup.
func (r *Runtime) StopInfra(ctx context.Context, grace time.Duration) error {
	r.restartMu.Lock()
	defer r.restartMu.Unlock()
	r.dropPG()
	cs, err := r.list(ctx, map[string]string{LabelKind: state.KindInfra})
	if err != nil {
		return err
	}
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			if err := r.stopContainer(ctx, c.ID, grace); err != nil {
				errs[i] = fmt.Errorf("stop %s: %w", c.Labels[LabelComponent], err)
			}
		})
	}
	wg.Wait()
	r.mu.Lock()
	r.infra = nil
	r.mu.Unlock()
	return errors.Join(errs...)
}
