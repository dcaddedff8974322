package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
)

// buildWorkers bounds parallel compiles: go build already uses every core.
const buildWorkers = 2

// serviceDockerfile is the whole image: the static binary and nothing else.
// Services only talk to their peers over plain HTTP, NATS and Postgres on the
// workspace network, so no CA certificates are needed; a scratch base needs
// no pull.
const serviceDockerfile = `FROM scratch
COPY app /app
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/app"]
`

// ImageRepo is the repository of a service's images; the tag is the content
// hash of the binary, so an unchanged service is never rebuilt.
func ImageRepo(project, service string) string {
	return "msctl/" + strings.ToLower(project) + "-" + service
}

// Build compiles each service for linux on the host (CGO_ENABLED=0, no VCS
// stamp, trimmed paths, so that unchanged sources give the same bytes) and
// builds an image from the binary unless an image with its hash exists.
func (r *Runtime) Build(ctx context.Context, services []runtime.BuildSpec, progress func(runtime.BuildEvent)) error {
	if progress == nil {
		progress = func(runtime.BuildEvent) {}
	}
	sem := make(chan struct{}, buildWorkers)
	errs := make([]error, len(services))
	var wg sync.WaitGroup
	for i, s := range services {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				progress(runtime.BuildEvent{Service: s.Name, Done: true, Err: ctx.Err()})
				return
			}
			defer func() { <-sem }()
			progress(runtime.BuildEvent{Service: s.Name})
			tag, cached, err := r.buildOne(ctx, s)
			if err != nil {
				err = fmt.Errorf("build %s: %w", s.Name, err)
			} else {
				r.mu.Lock()
				r.images[s.Name] = tag
				r.mu.Unlock()
			}
			errs[i] = err
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Cached: cached, Err: err, ID: tag})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Runtime) buildOne(ctx context.Context, s runtime.BuildSpec) (tag string, cached bool, err error) {
	if s.Language != manifest.LangGo {
		return "", false, fmt.Errorf("language %q: the docker runtime builds Go services only; use --runtime local", s.Language)
	}
	tmp, err := os.MkdirTemp("", "msctl-build-"+s.Name+"-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "app")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("go build: %w\n%s", err, bytes.TrimSpace(out))
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", false, err
	}
	return r.binaryImage(ctx, s.Name, data)
}

// binaryImage makes the image of one static binary for a component (a
// service, the chaos proxy) unless an image with its hash exists, and
// removes the component's older images.
func (r *Runtime) binaryImage(ctx context.Context, component string, data []byte) (tag string, cached bool, err error) {
	sum := sha256.Sum256(append([]byte(serviceDockerfile), data...))
	tag = ImageRepo(r.project, component) + ":" + hex.EncodeToString(sum[:])[:16]
	if _, err := r.cli.ImageInspect(ctx, tag); err == nil {
		return tag, true, nil
	} else if !isNotFound(err) {
		return "", false, fmt.Errorf("inspect image %s: %w", tag, err)
	}
	if err := r.imageBuild(ctx, tag, component, data); err != nil {
		return "", false, err
	}
	r.pruneImages(ctx, component, tag)
	return tag, false, nil
}

// imageBuild sends a context of the binary and the Dockerfile to the engine.
func (r *Runtime) imageBuild(ctx context.Context, tag, service string, bin []byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(serviceDockerfile)}, {"app", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := r.cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Labels:      r.labels(map[string]string{LabelComponent: service}),
	})
	if err != nil {
		return fmt.Errorf("image build: %w", err)
	}
	defer resp.Body.Close()
	// The build's outcome is in the stream: an error message, not a status.
	dec := json.NewDecoder(resp.Body)
	var log strings.Builder
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("image build: read output: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("image build: %s\n%s", msg.Error, log.String())
		}
		log.WriteString(msg.Stream)
	}
	return nil
}

// pruneImages removes the older images of a service; one still used by a
// container stays (the engine refuses), and goes with a later build.
func (r *Runtime) pruneImages(ctx context.Context, service, keep string) {
	imgs, err := r.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("reference", ImageRepo(r.project, service)),
		filters.Arg("label", LabelWorkspace+"="+r.project),
	)})
	if err != nil {
		return
	}
	for _, img := range imgs {
		for _, t := range img.RepoTags {
			if t != keep {
				_, _ = r.cli.ImageRemove(ctx, t, image.RemoveOptions{PruneChildren: true})
			}
		}
	}
}

// Image returns the image Build made for a service.
func (r *Runtime) Image(service string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tag, ok := r.images[service]
	return tag, ok
}

// RemoveImages removes every service image of the workspace.
func (r *Runtime) RemoveImages(ctx context.Context) error {
	imgs, err := r.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelWorkspace+"="+r.project),
	)})
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	var errs []error
	for _, img := range imgs {
		if _, err := r.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove image %s: %w", shortID(img.ID), err))
		}
	}
	return errors.Join(errs...)
}
