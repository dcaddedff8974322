package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	goruntime "runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/msctl/msctl/internal/k8s/gen"
)

// A cluster without a node containerd msctl can reach (a remote one) pulls
// the service images from kubernetes.registry, where Build pushes them.
// Plain HTTP is spoken only to loopback registries: go-containerregistry
// falls back to it only for those (and private ranges), as dockerd treats
// 127.0.0.0/8 as insecure; everything else is HTTPS with the user's
// `docker login` credentials.

// registryRef is where a service's image lives under registry: the name
// the generator gives it (so `msctl export k8s --tag HASH` names the same
// image), tagged like the local image Build made, whose tag is the
// content hash.
func registryRef(registry, project, service, local string) string {
	tag := gen.DefaultTag
	if i := strings.LastIndexByte(local, ':'); i >= 0 && !strings.Contains(local[i:], "/") {
		tag = local[i+1:]
	}
	return gen.ServiceImage(registry, project, service, tag)
}

// pushFromDocker pushes the local Docker engine's image local to ref,
// unless the registry already has it.
func pushFromDocker(ctx context.Context, local, ref, registry string) (cached bool, err error) {
	src, err := name.ParseReference(local)
	if err != nil {
		return false, fmt.Errorf("image %s: %w", local, err)
	}
	img, err := daemon.Image(src, daemon.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("image %s is not in the local Docker engine: %w", local, err)
	}
	return push(ctx, img, ref, registry)
}

// push writes img to ref unless ref already names an image of the same
// digest there (a warm up pushes nothing), and reports whether it did
// nothing.
func push(ctx context.Context, img v1.Image, ref, registry string) (cached bool, err error) {
	dst, err := name.ParseReference(ref)
	if err != nil {
		return false, fmt.Errorf("kubernetes.registry %q does not make an image reference (%s): %w; spell it host[:port][/path], e.g. registry.example.com/team", registry, ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return false, fmt.Errorf("push %s: read the local image: %w", ref, err)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if there, err := present(ctx, dst, digest, opts); err != nil {
		return false, registryError(err, ref, registry)
	} else if there {
		return true, nil
	}
	if err := remote.Write(dst, img, opts...); err != nil {
		return false, registryError(err, ref, registry)
	}
	return false, nil
}

// present reports whether the registry has ref at digest. A missing tag is
// not an error: the image is pushed.
func present(ctx context.Context, ref name.Reference, digest v1.Hash, opts []remote.Option) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	desc, err := remote.Head(ref, append(opts, remote.WithContext(ctx))...)
	var te *transport.Error
	switch {
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return false, nil
	case err != nil:
		return false, err
	}
	return desc.Digest == digest, nil
}

// pushCollector pushes the collector image (tag is its repository and tag)
// made from the msctl binary bin to the registry, and returns its reference
// there: the same image the node import makes, built in memory.
func (im *images) pushCollector(ctx context.Context, tag string, bin []byte) (string, error) {
	layer, err := collectorLayer(bin)
	if err != nil {
		return "", fmt.Errorf("collector image: %w", err)
	}
	img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		static.NewLayer(layer, types.OCIUncompressedLayer))
	if err != nil {
		return "", fmt.Errorf("collector image: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("collector image: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = goruntime.GOARCH, "linux"
	cfg.Config.Entrypoint, cfg.Config.User = []string{collectorEntrypoint}, collectorUser
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", fmt.Errorf("collector image: %w", err)
	}
	ref := im.registry + "/" + tag
	_, err = im.once(ref, func() (bool, error) { return push(ctx, img, ref, im.registry) })
	return ref, err
}

// registryError names the registry and what fixes a failed push.
func registryError(err error, ref, registry string) error {
	host, _, _ := strings.Cut(registry, "/")
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("push %s: registry %s refuses it: %w; log in with docker login %s (msctl pushes with docker's credentials), or fix kubernetes.registry", ref, host, err, host)
	}
	return fmt.Errorf("push %s: registry %s: %w; check that kubernetes.registry (%s, spelled host[:port][/path]) is right and answers, and log in with docker login %s", ref, host, err, registry, host)
}
