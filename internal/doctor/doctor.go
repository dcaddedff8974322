// Package doctor holds msctl's preflight checks: what a workspace needs from
// the machine (Docker and the infra images in it, Go, Postgres server
// binaries, the Pact library, a free gateway port) and whether the runtime
// `--runtime auto` picks (package pick decides which) can run here.
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

	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/internal/runtime/pick"
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

// Env is how the checks see the machine.
type Env struct {
	Docker pick.DockerProber
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
	// PortFree returns nil when the port can be bound on 127.0.0.1, an
	// error wrapping freeport.ErrInUse when another socket holds it.
	PortFree func(port int) error
	// PortHolder names the process listening on port as freeport.Holder
	// does ("pid 42 (nginx)"), or "".
	PortHolder func(port int) string
	// Kubernetes reads the kubeconfig and asks its API server for its version.
	Kubernetes func(ctx context.Context) (KubeInfo, error)
}

// Default returns an Env reading the real machine, checking gatewayPort
// (source says where the number comes from, e.g. "msctl.yaml") and the
// infra images (see pick.Images).
func Default(gatewayPort int, source string, images []string) Env {
	return Env{
		Docker:            pick.EngineProber{},
		Images:            images,
		GoVersion:         goVersion,
		PostgresBin:       pgserver.FindBin,
		PostgresVersion:   postgresVersion,
		PactLib:           FindPactLib,
		GatewayPort:       gatewayPort,
		GatewayPortSource: source,
		PortFree:          freeport.Check,
		PortHolder:        freeport.Holder,
		Kubernetes:        probeKubernetes,
	}
}

// Run performs every check.
func Run(ctx context.Context, env Env) Report {
	st := pick.Probe(ctx, env.Docker, env.Images)
	goRes := checkGo(ctx, env)
	pg := checkPostgres(ctx, env)
	r := Report{Checks: []Result{checkDocker(st), checkImages(st, env.Images), goRes, pg, checkPact(env), checkPort(env), checkKubernetes(ctx, env)}}

	p := st.Pick()
	r.Runtime = p.Runtime
	var missing []string
	var fixes []string
	if !goRes.OK {
		missing = append(missing, "Go")
		fixes = append(fixes, goRes.Fix)
	}
	if r.Runtime == pick.Local && !pg.OK {
		missing = append(missing, "Postgres server binaries")
		alt := ", or start Docker to use the docker runtime"
		if len(p.Missing) > 0 {
			alt = ", or get the infra images to use the docker runtime: " + pick.ImagesFix(p.Missing)
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

func checkDocker(st pick.Engine) Result {
	if st.Err != nil {
		return Result{Name: CheckDocker, Detail: st.Err.Error(), Fix: pick.DockerFix}
	}
	return Result{Name: CheckDocker, OK: true, Detail: fmt.Sprintf("engine %s, API %s", st.Info.Version, st.Info.APIVersion)}
}

func checkImages(st pick.Engine, images []string) Result {
	switch {
	case st.Err != nil:
		return Result{Name: CheckImages, Detail: "not checked: no Docker daemon answers",
			Fix: "start Docker (see the docker check) to use the docker runtime; the local runtime needs no images"}
	case st.ImageErr != nil:
		return Result{Name: CheckImages, Detail: st.ImageErr.Error(), Fix: "check that dockerd is healthy (docker info)"}
	case len(st.Missing) > 0:
		return Result{Name: CheckImages, Detail: "missing from the Docker engine: " + strings.Join(st.Missing, ", "), Fix: pick.ImagesFix(st.Missing)}
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
	} else if !errors.Is(err, freeport.ErrInUse) {
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
