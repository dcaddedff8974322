// Package doctor holds msctl's preflight checks: what a workspace needs from
// the machine (Docker and the infra images in it, Go, Postgres server
// binaries, the Pact library, a free gateway port) and which runtime
// `--runtime auto` picks.
//
// Each check reads the machine through a field of Env, so the decision logic
// is unit tested with fakes while Default wires the real probes.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/internal/manifest"
)

// Runtime names, as accepted by `msctl up --runtime`.
const (
	RuntimeDocker = "docker"
	RuntimeLocal  = "local"
)

// Check names, in the order Run reports them.
const (
	CheckDocker   = "docker"
	CheckImages   = "images"
	CheckGo       = "go"
	CheckPostgres = "postgres"
	CheckPact     = "pact"
	CheckPort     = "port"
	CheckRuntime  = "runtime"
)

// dockerTimeout bounds the daemon probe: a missing daemon usually fails at
// once, but a DOCKER_HOST pointing nowhere would otherwise hang.
const dockerTimeout = 3 * time.Second

// Result is the outcome of one check.
type Result struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// Report is the outcome of all checks.
type Report struct {
	Checks []Result
	// Runtime is what `--runtime auto` picks on this machine.
	Runtime string
	// RuntimeOK says whether that runtime has everything it needs.
	RuntimeOK bool
}

// DockerInfo describes a reachable Docker engine.
type DockerInfo struct {
	Version    string
	APIVersion string
}

// DockerProber reports whether a Docker daemon answers and which images it
// holds.
type DockerProber interface {
	Probe(ctx context.Context) (DockerInfo, error)
	// MissingImages returns those of refs the engine does not hold locally.
	MissingImages(ctx context.Context, refs []string) ([]string, error)
}

// Env is how the checks see the machine.
type Env struct {
	Docker DockerProber
	// Images are the infra image references the docker runtime runs.
	Images []string
	// GoVersion returns the output of `go version`.
	GoVersion func(ctx context.Context) (string, error)
	// PostgresBin returns the directory holding initdb and postgres.
	PostgresBin func() (string, error)
	// PostgresVersion returns the output of `<dir>/postgres --version`.
	PostgresVersion func(ctx context.Context, dir string) (string, error)
	// PactLib returns the path of libpact_ffi.so.
	PactLib func() (string, error)
	// GatewayPort is the port to check, with where it comes from.
	GatewayPort       int
	GatewayPortSource string
	// PortFree returns nil when the port can be bound on 127.0.0.1.
	PortFree func(port int) error
	// PortHolder names the process listening on port, or "".
	PortHolder func(port int) string
}

// Default returns an Env reading the real machine, checking gatewayPort
// (source says where the number comes from, e.g. "msctl.yaml") and the
// infra images (see Images).
func Default(gatewayPort int, source string, images []string) Env {
	return Env{
		Docker:            EngineProber{},
		Images:            images,
		GoVersion:         goVersion,
		PostgresBin:       pgserver.FindBin,
		PostgresVersion:   postgresVersion,
		PactLib:           FindPactLib,
		GatewayPort:       gatewayPort,
		GatewayPortSource: source,
		PortFree:          portFree,
		PortHolder:        func(port int) string { return PortHolder("/proc", port) },
	}
}

// EngineProber probes the Docker engine named by the environment
// (DOCKER_HOST, default unix socket), negotiating the API version so that
// older engines (20.10, API 1.41) answer.
type EngineProber struct{}

var _ DockerProber = EngineProber{}

// Probe pings the daemon and asks for its version.
func (EngineProber) Probe(ctx context.Context) (DockerInfo, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return DockerInfo{}, fmt.Errorf("docker client: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		return DockerInfo{}, fmt.Errorf("ping docker daemon: %w", err)
	}
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return DockerInfo{}, fmt.Errorf("docker server version: %w", err)
	}
	return DockerInfo{Version: v.Version, APIVersion: v.APIVersion}, nil
}

// MissingImages inspects each of refs in the engine. msctl never pulls:
// no registry may be reachable, and a pull bounded tightly enough not to
// stall `up` could not fetch a real image anyway.
func (EngineProber) MissingImages(ctx context.Context, refs []string) ([]string, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	var missing []string
	for _, ref := range refs {
		_, err := c.ImageInspect(ctx, ref)
		switch {
		case client.IsErrNotFound(err):
			missing = append(missing, ref)
		case err != nil:
			return nil, fmt.Errorf("inspect image %s: %w", ref, err)
		}
	}
	return missing, nil
}

// Images returns the infra image references the docker runtime runs for m
// (Postgres, broker, registry), or the defaults when there is no manifest.
func Images(m *manifest.Manifest) []string {
	if m == nil {
		return []string{
			manifest.Component{Image: manifest.DefaultPostgresImage, Version: manifest.DefaultPostgresVersion}.Ref(),
			manifest.Component{Image: manifest.DefaultBrokerImage, Version: manifest.DefaultBrokerVersion}.Ref(),
			manifest.Component{Image: manifest.DefaultRegistryImage, Version: manifest.DefaultRegistryVersion}.Ref(),
		}
	}
	return []string{m.Infra.Postgres.Ref(), m.Infra.Broker.Ref(), m.Infra.Registry.Ref()}
}

// ImagesFix is the fix for infra images missing from the engine.
func ImagesFix(missing []string) string {
	return GetImages(missing) + ", or use --runtime local"
}

// GetImages says how to get the missing infra images into the engine.
// `make images` only builds stand-ins for the default tags, so it is
// offered only when one of those is missing.
func GetImages(missing []string) string {
	pulls := make([]string, len(missing))
	standin := false
	for i, ref := range missing {
		pulls[i] = "`docker pull " + ref + "`"
		standin = standin || slices.Contains(Images(nil), ref)
	}
	if standin {
		return "run `make images` (offline stand-ins) or " + strings.Join(pulls, " and ")
	}
	return "run " + strings.Join(pulls, " and ")
}

// Pick is the runtime `--runtime auto` chose, and why.
type Pick struct {
	Runtime string
	// Reason says why, e.g. "no Docker daemon answers".
	Reason string
	// DockerAnswers is set when the daemon answered, whatever was picked.
	DockerAnswers bool
	// Missing lists the infra images the engine lacks, when it answered.
	Missing []string
}

// PickRuntime returns the runtime `--runtime auto` uses: docker when the
// daemon answers and holds every one of images, else local.
func PickRuntime(ctx context.Context, images []string) Pick {
	return probeDocker(ctx, EngineProber{}, images).pick()
}

// RequireDocker returns nil when the docker runtime can run images here: the
// daemon answers and holds every one of them. Its error names the fix.
func RequireDocker(ctx context.Context, images []string) error {
	return probeDocker(ctx, EngineProber{}, images).require()
}

// dockerState is what one probe of the engine learned.
type dockerState struct {
	info     DockerInfo
	err      error // the daemon did not answer
	missing  []string
	imageErr error // the images could not be inspected
}

func probeDocker(ctx context.Context, d DockerProber, images []string) dockerState {
	var st dockerState
	if st.info, st.err = d.Probe(ctx); st.err != nil {
		return st
	}
	st.missing, st.imageErr = d.MissingImages(ctx, images)
	return st
}

func (st dockerState) pick() Pick {
	switch {
	case st.err != nil:
		return Pick{Runtime: RuntimeLocal, Reason: "no Docker daemon answers"}
	case st.imageErr != nil:
		return Pick{Runtime: RuntimeLocal, DockerAnswers: true, Reason: "the Docker daemon answers but " + st.imageErr.Error()}
	case len(st.missing) > 0:
		return Pick{Runtime: RuntimeLocal, DockerAnswers: true, Missing: st.missing,
			Reason: "the Docker daemon answers but lacks the infra images " + strings.Join(st.missing, ", ")}
	default:
		return Pick{Runtime: RuntimeDocker, DockerAnswers: true, Reason: "the Docker daemon answers and holds the infra images"}
	}
}

func (st dockerState) require() error {
	switch {
	case st.err != nil:
		return fmt.Errorf("the docker runtime needs a Docker daemon: %w\n\tfix: %s", st.err, dockerFix)
	case st.imageErr != nil:
		return fmt.Errorf("the docker runtime cannot check its infra images: %w\n\tfix: check that dockerd is healthy (docker info), or use --runtime local", st.imageErr)
	case len(st.missing) > 0:
		return fmt.Errorf("the docker runtime needs infra images the local Docker engine does not have: %s\n\tfix: %s",
			strings.Join(st.missing, ", "), ImagesFix(st.missing))
	}
	return nil
}

const dockerFix = "install Docker (apt-get install -y docker.io) and start dockerd, or set DOCKER_HOST; without it msctl uses the local runtime"

// Run performs every check.
func Run(ctx context.Context, env Env) Report {
	st := probeDocker(ctx, env.Docker, env.Images)
	goRes := checkGo(ctx, env)
	pg := checkPostgres(ctx, env)
	r := Report{Checks: []Result{checkDocker(st), checkImages(st, env.Images), goRes, pg, checkPact(env), checkPort(env)}}

	p := st.pick()
	r.Runtime = p.Runtime
	var missing []string
	var fixes []string
	if !goRes.OK {
		missing = append(missing, "Go")
		fixes = append(fixes, goRes.Fix)
	}
	if r.Runtime == RuntimeLocal && !pg.OK {
		missing = append(missing, "Postgres server binaries")
		alt := ", or start Docker to use the docker runtime"
		if len(p.Missing) > 0 {
			alt = ", or get the infra images to use the docker runtime: " + ImagesFix(p.Missing)
		}
		fixes = append(fixes, pg.Fix+alt)
	}
	r.RuntimeOK = len(missing) == 0
	rt := Result{Name: CheckRuntime, OK: r.RuntimeOK}
	rt.Detail = fmt.Sprintf("auto picks %s (%s)", r.Runtime, p.Reason)
	if !r.RuntimeOK {
		rt.Detail += "; it cannot run without " + strings.Join(missing, " and ")
		rt.Fix = strings.Join(fixes, "; ")
	}
	r.Checks = append(r.Checks, rt)
	return r
}

func checkDocker(st dockerState) Result {
	if st.err != nil {
		return Result{Name: CheckDocker, Detail: st.err.Error(), Fix: dockerFix}
	}
	return Result{Name: CheckDocker, OK: true, Detail: fmt.Sprintf("engine %s, API %s", st.info.Version, st.info.APIVersion)}
}

func checkImages(st dockerState, images []string) Result {
	switch {
	case st.err != nil:
		return Result{Name: CheckImages, Detail: "not checked: no Docker daemon answers",
			Fix: "start Docker (see the docker check) to use the docker runtime; the local runtime needs no images"}
	case st.imageErr != nil:
		return Result{Name: CheckImages, Detail: st.imageErr.Error(), Fix: "check that dockerd is healthy (docker info)"}
	case len(st.missing) > 0:
		return Result{Name: CheckImages, Detail: "missing from the Docker engine: " + strings.Join(st.missing, ", "), Fix: ImagesFix(st.missing)}
	}
	return Result{Name: CheckImages, OK: true, Detail: strings.Join(images, ", ") + " present"}
}

func checkGo(ctx context.Context, env Env) Result {
	out, err := env.GoVersion(ctx)
	if err != nil {
		return Result{Name: CheckGo, Detail: err.Error(), Fix: "install Go (go.dev/dl) and put its bin directory on PATH; msctl builds services with it"}
	}
	return Result{Name: CheckGo, OK: true, Detail: strings.TrimPrefix(strings.TrimSpace(out), "go version ")}
}

func checkPostgres(ctx context.Context, env Env) Result {
	const fix = "install the Postgres server (apt-get install -y postgresql-15); the local runtime runs initdb and postgres from PATH or /usr/lib/postgresql/*/bin"
	dir, err := env.PostgresBin()
	if err != nil {
		return Result{Name: CheckPostgres, Detail: err.Error(), Fix: fix}
	}
	out, err := env.PostgresVersion(ctx, dir)
	if err != nil {
		return Result{Name: CheckPostgres, Detail: fmt.Sprintf("%s: %v", dir, err), Fix: fix}
	}
	// "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" -> "PostgreSQL 15.14".
	v := strings.TrimSpace(out)
	if f := strings.Fields(v); len(f) >= 3 {
		v = "PostgreSQL " + f[2]
	}
	return Result{Name: CheckPostgres, OK: true, Detail: v + " in " + dir}
}

func checkPact(env Env) Result {
	p, err := env.PactLib()
	if err != nil {
		return Result{
			Name:   CheckPact,
			Detail: err.Error(),
			Fix: "run `make pact`, which installs libpact_ffi.so (0.4.x) from the npm package " +
				"@pact-foundation/pact-core-linux-x64-glibc@18.1.0 into /usr/local/lib; only `msctl contracts` needs it",
		}
	}
	return Result{Name: CheckPact, OK: true, Detail: p}
}

func checkPort(env Env) Result {
	desc := fmt.Sprintf("gateway port %d (%s)", env.GatewayPort, env.GatewayPortSource)
	err := env.PortFree(env.GatewayPort)
	if err == nil {
		return Result{Name: CheckPort, OK: true, Detail: desc + " is free"}
	}
	detail := desc + " is in use"
	fix := "stop whatever listens on it, or set gateway.port in msctl.yaml"
	if h := env.PortHolder(env.GatewayPort); h != "" {
		detail += " by " + h
		fix = "stop " + h + ", or set gateway.port in msctl.yaml"
	} else if !errors.Is(err, errInUse) {
		detail += ": " + err.Error()
	}
	return Result{Name: CheckPort, Detail: detail, Fix: fix}
}

func goVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "version").Output()
	if err != nil {
		return "", fmt.Errorf("go version: %w", err)
	}
	return string(out), nil
}

func postgresVersion(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, dir+"/postgres", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("postgres --version: %w", err)
	}
	return string(out), nil
}
