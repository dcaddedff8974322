// Package pick decides where a workspace runs: which runtime `--runtime
// auto` chooses, and whether an explicit `--runtime docker` can run here.
// Both depend on one probe of the Docker engine (does the daemon answer,
// does it hold the infra images); doctor reports the same probe.
//
// It imports no runtime, so that the runtimes may use its messages.
package pick

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/msctl/msctl/internal/manifest"
)

// Runtime names, as accepted by `msctl up --runtime` (the runtimes' own Name
// constants: this package cannot import them).
const (
	Docker = "docker"
	Local  = "local"
)

// dockerTimeout bounds the daemon probe: a missing daemon usually fails at
// once, but a DOCKER_HOST pointing nowhere would otherwise hang.
const dockerTimeout = 3 * time.Second

// DockerFix is the fix for a Docker daemon that does not answer.
const DockerFix = "install Docker (apt-get install -y docker.io) and start dockerd, or set DOCKER_HOST; without it msctl uses the local runtime"

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

// Auto returns the runtime `--runtime auto` uses: docker when the daemon
// answers and holds every one of images, else local.
func Auto(ctx context.Context, images []string) Pick {
	return Probe(ctx, EngineProber{}, images).Pick()
}

// RequireDocker returns nil when the docker runtime can run images here: the
// daemon answers and holds every one of them. Its error names the fix.
func RequireDocker(ctx context.Context, images []string) error {
	return Probe(ctx, EngineProber{}, images).Require()
}

// Engine is what one probe of the Docker engine learned.
type Engine struct {
	Info     DockerInfo
	Err      error // the daemon did not answer
	Missing  []string
	ImageErr error // the images could not be inspected
}

// Probe asks d whether its daemon answers and, when it does, which of
// images it lacks.
func Probe(ctx context.Context, d DockerProber, images []string) Engine {
	var e Engine
	if e.Info, e.Err = d.Probe(ctx); e.Err != nil {
		return e
	}
	e.Missing, e.ImageErr = d.MissingImages(ctx, images)
	return e
}

// Pick is the runtime auto chooses on this engine.
func (e Engine) Pick() Pick {
	switch {
	case e.Err != nil:
		return Pick{Runtime: Local, Reason: "no Docker daemon answers"}
	case e.ImageErr != nil:
		return Pick{Runtime: Local, DockerAnswers: true, Reason: "the Docker daemon answers but " + e.ImageErr.Error()}
	case len(e.Missing) > 0:
		return Pick{Runtime: Local, DockerAnswers: true, Missing: e.Missing,
			Reason: "the Docker daemon answers but lacks the infra images " + strings.Join(e.Missing, ", ")}
	default:
		return Pick{Runtime: Docker, DockerAnswers: true, Reason: "the Docker daemon answers and holds the infra images"}
	}
}

// Require is nil when the docker runtime can run on this engine, else why
// not and the fix.
func (e Engine) Require() error {
	switch {
	case e.Err != nil:
		return fmt.Errorf("the docker runtime needs a Docker daemon: %w\n\tfix: %s", e.Err, DockerFix)
	case e.ImageErr != nil:
		return fmt.Errorf("the docker runtime cannot check its infra images: %w\n\tfix: check that dockerd is healthy (docker info), or use --runtime local", e.ImageErr)
	case len(e.Missing) > 0:
		return fmt.Errorf("the docker runtime needs infra images the local Docker engine does not have: %s\n\tfix: %s",
			strings.Join(e.Missing, ", "), ImagesFix(e.Missing))
	}
	return nil
}
