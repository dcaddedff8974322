package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/docker"
)

// images gets images onto the cluster's node: for a local cluster they are
// imported straight into the node's containerd (no registry); for a remote
// one they must come from kubernetes.registry.
type images struct {
	sock     string // node containerd socket; empty: the cluster pulls
	registry string

	mu     sync.Mutex
	loaded map[string]bool // refs known to be on the node
}

// ctrNamespace is the containerd namespace the kubelet's CRI uses.
const ctrNamespace = "k8s.io"

// ensure makes ref available to the node, importing it from the local
// Docker engine unless the node already has it. It reports whether it did
// nothing.
func (im *images) ensure(ctx context.Context, ref string) (cached bool, err error) {
	if im.sock == "" {
		if im.registry == "" {
			return true, nil // the cluster pulls it itself (an infra image from its registry)
		}
		return false, fmt.Errorf("push %s to %s: pushing to a registry is not supported yet; use a local cluster with %s", ref, im.registry, EnvContainerdSock)
	}
	im.mu.Lock()
	if im.loaded[ref] {
		im.mu.Unlock()
		return true, nil
	}
	im.mu.Unlock()
	full := normalize(ref)
	out, err := exec.CommandContext(ctx, "ctr", "--address", im.sock, "-n", ctrNamespace, "images", "ls", "-q", "name=="+full).Output()
	if err != nil {
		return false, fmt.Errorf("list images of the node's containerd at %s: %w (is the cluster up, and ctr installed?)", im.sock, err)
	}
	cached = strings.TrimSpace(string(out)) == full
	if !cached {
		if err := im.importFromDocker(ctx, ref); err != nil {
			return false, err
		}
	}
	im.mu.Lock()
	if im.loaded == nil {
		im.loaded = map[string]bool{}
	}
	im.loaded[ref] = true
	im.mu.Unlock()
	return cached, nil
}

// importFromDocker streams `docker save` of ref into `ctr images import`.
func (im *images) importFromDocker(ctx context.Context, ref string) error {
	cli, err := docker.NewClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	rc, err := cli.ImageSave(ctx, []string{ref})
	if err != nil {
		return fmt.Errorf("image %s is not loadable: the local Docker engine cannot save it: %w (build or load it with docker first)", ref, err)
	}
	defer rc.Close()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ctr", "--address", im.sock, "-n", ctrNamespace, "images", "import", "-")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = rc, io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("image %s is not loadable into the node's containerd at %s: %w: %s", ref, im.sock, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// normalize is how containerd names a Docker reference.
func normalize(ref string) string {
	name := ref
	if i := strings.IndexByte(ref, '/'); i < 0 || !strings.ContainsAny(ref[:i], ".:") && ref[:i] != "localhost" {
		if i < 0 {
			name = "library/" + ref
		}
		name = "docker.io/" + name
	}
	return name
}

// Build compiles and builds each service's image as the docker runtime
// does (FROM scratch, host-compiled binary, content-hash tag) and gets it
// onto the node. A service counts as cached only when neither the image
// nor the node changed.
func (r *Runtime) Build(ctx context.Context, services []runtime.BuildSpec, progress func(runtime.BuildEvent)) error {
	if progress == nil {
		progress = func(runtime.BuildEvent) {}
	}
	d, err := docker.New(docker.Options{Project: r.base.Project, Dir: r.opts.Dir, Log: r.log})
	if err != nil {
		return err
	}
	defer d.Close()
	var loadMu sync.Mutex
	var loadErrs []error
	err = d.Build(ctx, services, func(ev runtime.BuildEvent) {
		if !ev.Done || ev.Err != nil {
			progress(ev)
			return
		}
		tag, _ := d.Image(ev.Service)
		cached, err := r.images.ensure(ctx, tag)
		if err != nil {
			ev.Err = fmt.Errorf("build %s: %w", ev.Service, err)
			loadMu.Lock()
			loadErrs = append(loadErrs, ev.Err)
			loadMu.Unlock()
		} else {
			r.mu.Lock()
			r.built[ev.Service] = tag
			r.mu.Unlock()
		}
		ev.Cached = ev.Cached && cached
		progress(ev)
	})
	return errors.Join(append([]error{err}, loadErrs...)...)
}
