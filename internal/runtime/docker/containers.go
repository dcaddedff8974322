package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/pick"
)

// createAndStart creates a container, writes files into it and starts it,
// translating host port conflicts into *runtime.PortInUseError. A container
// that failed to start is removed.
func (r *Runtime) createAndStart(ctx context.Context, cfg *container.Config, host *container.HostConfig,
	netCfg *network.NetworkingConfig, name string, fixed map[nat.Port]int, files map[string]string) (string, error) {
	created, err := r.cli.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	if err != nil {
		if isNotFound(err) {
			// msctl never pulls: `up` checks the infra images first, so
			// this is one removed while the workspace was starting.
			return "", fmt.Errorf("image %s is not in the local Docker engine (msctl does not pull): %w\n\tfix: %s",
				cfg.Image, err, pick.ImagesFix([]string{cfg.Image}))
		}
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	r.claim(created.ID)
	if len(files) > 0 {
		if err := r.copyFiles(ctx, created.ID, files); err != nil {
			_ = r.removeContainer(context.WithoutCancel(ctx), created.ID)
			return "", fmt.Errorf("container %s: %w", name, err)
		}
	}
	if err := r.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		_ = r.removeContainer(context.WithoutCancel(ctx), created.ID)
		if isPortTaken(err) {
			for _, p := range sortedPorts(fixed) {
				if fixed[p] != 0 {
					return "", &runtime.PortInUseError{Port: fixed[p], Holder: freeport.Holder(fixed[p])}
				}
			}
		}
		return "", fmt.Errorf("start container %s: %w", name, err)
	}
	return created.ID, nil
}

// copyFiles writes files (absolute path → content) into a created
// container, with their parent directories, as one tar extracted at /.
func (r *Runtime) copyFiles(ctx context.Context, id string, files map[string]string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		rel := strings.TrimPrefix(path.Clean(p), "/")
		var parents []string
		for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		slices.Reverse(parents)
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(files[p]))}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(files[p])); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := r.cli.CopyToContainer(ctx, id, "/", &buf, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("copy files into the container: %w", err)
	}
	return nil
}

func hostPortString(p int) string {
	if p == 0 {
		return ""
	}
	return strconv.Itoa(p)
}

// publishedPorts maps container ports to the host ports they are published
// on (on 127.0.0.1).
func publishedPorts(info container.InspectResponse) map[nat.Port]string {
	out := map[nat.Port]string{}
	if info.NetworkSettings == nil {
		return out
	}
	for p, bs := range info.NetworkSettings.Ports {
		for _, b := range bs {
			if b.HostIP == "127.0.0.1" && b.HostPort != "" {
				out[p] = b.HostPort
				break
			}
		}
	}
	return out
}

func (r *Runtime) stopContainer(ctx context.Context, id string, grace time.Duration) error {
	secs := int((grace + time.Second - 1) / time.Second)
	err := r.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// list returns the containers of this workspace (running or not) that carry
// the extra labels too.
func (r *Runtime) list(ctx context.Context, extra map[string]string) ([]container.Summary, error) {
	return listWorkspace(ctx, r.cli, r.project, extra)
}

func listWorkspace(ctx context.Context, cli containerLister, project string, extra map[string]string) ([]container.Summary, error) {
	args := filters.NewArgs(filters.Arg("label", LabelWorkspace+"="+project))
	for k, v := range extra {
		args.Add("label", k+"="+v)
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", project, err)
	}
	return cs, nil
}

type containerLister interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

func (r *Runtime) claim(id string) {
	r.mu.Lock()
	r.claimed[id] = true
	r.mu.Unlock()
}

func (r *Runtime) release(id string) {
	r.mu.Lock()
	delete(r.claimed, id)
	r.mu.Unlock()
}

func (r *Runtime) isClaimed(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claimed[id]
}

// removeContainer removes a container whatever its state; one already gone
// is not an error.
func (r *Runtime) removeContainer(ctx context.Context, id string) error {
	err := r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	r.release(id)
	if err != nil && !isNotFound(err) && !strings.Contains(err.Error(), "is already in progress") {
		return fmt.Errorf("remove container %s: %w", shortID(id), err)
	}
	return nil
}

func isNotFound(err error) bool {
	return err != nil && (clientNotFound(err) || strings.Contains(err.Error(), "No such"))
}

func shortID(id string) string { return id[:min(12, len(id))] }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
