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
// one the service images are pushed to kubernetes.registry, and the infra
// images come from their public registries.
type images struct {
	sock     string // node containerd socket; empty: the cluster pulls
	registry string // where service images are pushed when sock is empty

	mu     sync.Mutex
	loaded map[string]bool // refs known to be on the node, or in the registry
}

// ctrNamespace is the containerd namespace the kubelet's CRI uses.
const ctrNamespace = "k8s.io"

// ensure makes ref available to the node, importing it from the local
// Docker engine unless the node already has it. It reports whether it did
// nothing. Without a node containerd the cluster pulls ref itself.
func (im *images) ensure(ctx context.Context, ref string) (cached bool, err error) {
	if im.sock == "" {
		return true, nil
	}
	return im.once(ref, func() (bool, error) { return im.load(ctx, ref) })
}

// service makes a service's image, which Build made in the local Docker
// engine as local, available to the cluster and returns the reference its
// pods run: local itself when imported into the node, else its name under
// kubernetes.registry, pushed there. With neither, the pods run local and
// cannot get it; diagnose says what fixes that.
func (im *images) service(ctx context.Context, project, service, local string) (ref string, cached bool, err error) {
	if im.sock != "" || im.registry == "" {
		cached, err = im.ensure(ctx, local)
		return local, cached, err
	}
	ref = registryRef(im.registry, project, service, local)
	cached, err = im.once(ref, func() (bool, error) { return pushFromDocker(ctx, local, ref, im.registry) })
	return ref, cached, err
}

// once runs get unless ref was got before by this runtime, and remembers
// it when it succeeds.
func (im *images) once(ref string, get func() (cached bool, err error)) (bool, error) {
	im.mu.Lock()
	if im.loaded[ref] {
		im.mu.Unlock()
		return true, nil
	}
	im.mu.Unlock()
	cached, err := get()
	if err != nil {
		return false, err
	}
	im.mu.Lock()
	if im.loaded == nil {
		im.loaded = map[string]bool{}
	}
	im.loaded[ref] = true
	im.mu.Unlock()
	return cached, nil
}

// load imports ref into the node's containerd unless it is there.
func (im *images) load(ctx context.Context, ref string) (cached bool, err error) {
	full := normalize(ref)
	out, err := exec.CommandContext(ctx, "ctr", "--address", im.sock, "-n", ctrNamespace, "images", "ls", "-q", "name=="+full).Output()
	if err != nil {
		return false, fmt.Errorf("list images of the node's containerd at %s: %w (is the cluster up, and ctr installed?)", im.sock, err)
	}
	if strings.TrimSpace(string(out)) == full {
		return true, nil
	}
	return false, im.importFromDocker(ctx, ref)
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
// onto the node, or pushes it to kubernetes.registry for a cluster that
// pulls. A service counts as cached only when neither the image nor the
// node (or the registry) changed.
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
		local, _ := d.Image(ev.Service)
		ref, cached, err := r.images.service(ctx, r.base.Project, ev.Service, local)
		if err != nil {
			ev.Err = fmt.Errorf("build %s: %w", ev.Service, err)
			loadMu.Lock()
			loadErrs = append(loadErrs, ev.Err)
			loadMu.Unlock()
		} else {
			r.mu.Lock()
			r.built[ev.Service] = ref
			r.mu.Unlock()
		}
		ev.Cached = ev.Cached && cached
		progress(ev)
	})
	return errors.Join(append([]error{err}, loadErrs...)...)
}
