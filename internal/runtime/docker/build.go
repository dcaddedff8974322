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
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/gobuild"
)

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

// ImageRepo is the repository of a service's images. An image's tag is the
// content hash of its binary, so that equal binaries share one image and a
// service whose binary did not change is not replaced; its further tags
// (keyTag) name the source keys it was built from.
func ImageRepo(project, service string) string {
	return "msctl/" + strings.ToLower(project) + "-" + service
}

// keyTagPrefix starts the tags that carry a source key.
const keyTagPrefix = "src-"

// keyTag is the tag of the image built from the sources with key: a later
// Build of the same sources finds the image by it without compiling.
func (r *Runtime) keyTag(service, key string) string {
	return ImageRepo(r.project, service) + ":" + keyTagPrefix + key[:32]
}

// buildEnv and buildFlags make a static linux binary of the host's
// architecture, with the same bytes from the same sources (no VCS stamp,
// trimmed paths, no symbol tables). They are part of the source key.
var (
	buildEnv   = []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + goruntime.GOARCH}
	buildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w"}
)

// Build gives each service an image. One whose source key (gobuild.Keyer)
// tags an image of the workspace already has it: no compile, no image build
// (BuildEvent.Cached), which is what makes an up with nothing changed take
// a moment rather than a compile of every service. The others are compiled
// on the host by one go build per module (it loads the shared packages once
// and compiles in parallel on every core; modules built at once share the
// cores), and each binary becomes an image unless one with its content hash
// exists; those image builds run in parallel, one per core.
func (r *Runtime) Build(ctx context.Context, services []runtime.BuildSpec, progress func(runtime.BuildEvent)) error {
	if progress == nil {
		progress = func(runtime.BuildEvent) {}
	}
	var errs []error
	byModule := map[string][]runtime.BuildSpec{}
	for _, s := range services {
		root, err := "", fmt.Errorf("language %q: the docker runtime builds Go services only; use --runtime local", s.Language)
		if s.Language == manifest.LangGo {
			root, err = gobuild.ModuleRoot(s.Dir)
		}
		if err != nil {
			err = fmt.Errorf("build %s: %w", s.Name, err)
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Err: err})
			errs = append(errs, err)
			continue
		}
		byModule[root] = append(byModule[root], s)
	}
	par := max(1, goruntime.NumCPU()/max(1, len(byModule)))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for root, group := range byModule {
		wg.Go(func() {
			if err := r.buildModule(ctx, root, group, par, progress); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// buildModule builds the services of one module; par bounds its go build's
// parallelism (-p).
func (r *Runtime) buildModule(ctx context.Context, root string, group []runtime.BuildSpec, par int, progress func(runtime.BuildEvent)) error {
	kr := gobuild.NewKeyer(root, slices.Concat(buildEnv, buildFlags)...)
	keys := map[string]string{}
	var stale []runtime.BuildSpec
	for _, s := range group {
		key, err := kr.Key(s.Dir)
		if err != nil {
			// Not knowing the inputs only costs the shortcut.
			r.log.Debug("no source key, compiling", "service", s.Name, "err", err)
		} else if tag := r.imageForKey(ctx, s.Name, key); tag != "" {
			r.setImage(s.Name, tag)
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Cached: true, ID: tag})
			continue
		}
		keys[s.Name] = key
		stale = append(stale, s)
	}
	if len(stale) == 0 {
		return nil
	}

	tmp, err := os.MkdirTemp("", "msctl-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	targets := make([]gobuild.Target, 0, len(stale))
	for _, s := range stale {
		progress(runtime.BuildEvent{Service: s.Name})
		targets = append(targets, gobuild.Target{Name: s.Name, Dir: s.Dir})
	}
	// go build links every package it can, so in this fresh directory a
	// binary is one this run made whole: a service that broke the build
	// fails alone (with the compiler's output), the others go on.
	compileErr := gobuild.Compile(ctx, root, tmp, targets, buildEnv, append(slices.Clone(buildFlags), "-p", strconv.Itoa(par)))
	sem := make(chan struct{}, goruntime.NumCPU())
	errs := make([]error, len(stale))
	var wg sync.WaitGroup
	for i, s := range stale {
		if _, err := os.Stat(filepath.Join(tmp, s.Name)); compileErr != nil && err != nil {
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Err: compileErr})
			continue
		}
		wg.Go(func() {
			var tag string
			select {
			case sem <- struct{}{}:
				tag, errs[i] = r.serviceImage(ctx, s.Name, filepath.Join(tmp, s.Name), keys[s.Name])
				<-sem
			case <-ctx.Done():
				errs[i] = ctx.Err()
			}
			if errs[i] != nil {
				errs[i] = fmt.Errorf("build %s: %w", s.Name, errs[i])
			} else {
				r.setImage(s.Name, tag)
			}
			progress(runtime.BuildEvent{Service: s.Name, Done: true, Err: errs[i], ID: tag})
		})
	}
	wg.Wait()
	return errors.Join(append(errs, compileErr)...)
}

// imageForKey returns the content tag of the service's image built from
// the sources with key, "" when there is none (or the engine cannot say:
// then the service is built).
func (r *Runtime) imageForKey(ctx context.Context, service, key string) string {
	img, err := r.cli.ImageInspect(ctx, r.keyTag(service, key))
	if err != nil {
		if !isNotFound(err) {
			r.log.Debug("look up image by source key", "service", service, "err", err)
		}
		return ""
	}
	repo := ImageRepo(r.project, service) + ":"
	for _, t := range img.RepoTags {
		if strings.HasPrefix(t, repo) && !strings.HasPrefix(t, repo+keyTagPrefix) {
			return t
		}
	}
	return "" // its content tag was removed (pruneImages): build it again
}

// serviceImage makes the image of the binary at bin and tags it with the
// source key it was compiled from, unless key is empty.
func (r *Runtime) serviceImage(ctx context.Context, service, bin, key string) (string, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	tag, _, err := r.binaryImage(ctx, service, data)
	if err != nil || key == "" {
		return tag, err
	}
	if err := r.cli.ImageTag(ctx, tag, r.keyTag(service, key)); err != nil {
		return "", fmt.Errorf("tag image %s with its source key: %w", tag, err)
	}
	return tag, nil
}

func (r *Runtime) setImage(service, tag string) {
	r.mu.Lock()
	r.images[service] = tag
	r.mu.Unlock()
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

// pruneImages removes the older images of a service. Their source-key tags
// go first and the content tag last: an image still used by a container
// keeps its last tag (the engine refuses to remove it), and a content tag
// without key tags is only ever found by content again, never trusted for
// sources it was not built from. It goes with a later build.
func (r *Runtime) pruneImages(ctx context.Context, service, keep string) {
	imgs, err := r.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("reference", ImageRepo(r.project, service)),
		filters.Arg("label", LabelWorkspace+"="+r.project),
	)})
	if err != nil {
		return
	}
	keyFirst := func(t string) int {
		if strings.Contains(t, ":"+keyTagPrefix) {
			return 0
		}
		return 1
	}
	for _, img := range imgs {
		if slices.Contains(img.RepoTags, keep) {
			continue
		}
		tags := slices.Clone(img.RepoTags)
		slices.SortStableFunc(tags, func(a, b string) int { return keyFirst(a) - keyFirst(b) })
		for _, t := range tags {
			_, _ = r.cli.ImageRemove(ctx, t, image.RemoveOptions{PruneChildren: true})
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
