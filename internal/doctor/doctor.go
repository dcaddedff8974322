// Package doctor holds msctl's preflight checks: what a workspace needs from
// the machine (Docker, Go, Postgres server binaries, the Pact library, a free
// gateway port) and which runtime `--runtime auto` picks.
//
// Each check reads the machine through a field of Env, so the decision logic
// is unit tested with fakes while Default wires the real probes.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/docker/docker/client"
)

// Runtime names, as accepted by `msctl up --runtime`.
const (
	RuntimeDocker = "docker"
	RuntimeLocal  = "local"
)

// Check names, in the order Run reports them.
const (
	CheckDocker   = "docker"
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

// DockerProber reports whether a Docker daemon answers.
type DockerProber interface {
	Probe(ctx context.Context) (DockerInfo, error)
}

// Env is how the checks see the machine.
type Env struct {
	Docker DockerProber
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
// (source says where the number comes from, e.g. "msctl.yaml").
func Default(gatewayPort int, source string) Env {
	return Env{
		Docker:            EngineProber{},
		GoVersion:         goVersion,
		PostgresBin:       FindPostgresBin,
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

// PickRuntime returns the runtime `--runtime auto` uses: docker when the
// daemon answers, else local.
func PickRuntime(ctx context.Context) string {
	return pickRuntime(ctx, EngineProber{})
}

func pickRuntime(ctx context.Context, d DockerProber) string {
	if _, err := d.Probe(ctx); err == nil {
		return RuntimeDocker
	}
	return RuntimeLocal
}

// Run performs every check.
func Run(ctx context.Context, env Env) Report {
	docker := checkDocker(ctx, env)
	goRes := checkGo(ctx, env)
	pg := checkPostgres(ctx, env)
	r := Report{Checks: []Result{docker, goRes, pg, checkPact(env), checkPort(env)}}

	r.Runtime = RuntimeLocal
	if docker.OK {
		r.Runtime = RuntimeDocker
	}
	var missing []string
	var fixes []string
	if !goRes.OK {
		missing = append(missing, "Go")
		fixes = append(fixes, goRes.Fix)
	}
	if r.Runtime == RuntimeLocal && !pg.OK {
		missing = append(missing, "Postgres server binaries")
		fixes = append(fixes, pg.Fix+", or start Docker to use the docker runtime")
	}
	r.RuntimeOK = len(missing) == 0
	rt := Result{Name: CheckRuntime, OK: r.RuntimeOK}
	why := "the Docker daemon answers"
	if r.Runtime == RuntimeLocal {
		why = "no Docker daemon answers"
	}
	rt.Detail = fmt.Sprintf("auto picks %s (%s)", r.Runtime, why)
	if !r.RuntimeOK {
		rt.Detail += "; it cannot run without " + strings.Join(missing, " and ")
		rt.Fix = strings.Join(fixes, "; ")
	}
	r.Checks = append(r.Checks, rt)
	return r
}

func checkDocker(ctx context.Context, env Env) Result {
	info, err := env.Docker.Probe(ctx)
	if err != nil {
		return Result{
			Name:   CheckDocker,
			Detail: err.Error(),
			Fix:    "install Docker (apt-get install -y docker.io) and start dockerd, or set DOCKER_HOST; without it msctl uses the local runtime",
		}
	}
	return Result{Name: CheckDocker, OK: true, Detail: fmt.Sprintf("engine %s, API %s", info.Version, info.APIVersion)}
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
