package kubernetes

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
)

// Static reports whether the executable at path runs without a dynamic
// loader, i.e. in a FROM-scratch image.
func Static(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// StaticSelf is the running msctl when it can run in a FROM-scratch image
// (a static binary), as the collector and the chaos proxy do, else empty:
// a cgo build needs a libc that such an image lacks.
func StaticSelf() string {
	exe, err := os.Executable()
	if err != nil || !Static(exe) {
		return ""
	}
	return exe
}

// collectorRepo is the collector image's repository; its tag is the
// binary's hash.
const collectorRepo = "msctl/collector"

// collectorImage puts the msctl binary at bin on the node as a one-layer
// image whose entrypoint is that binary, and returns its reference. The
// image is written as an OCI archive and imported straight into the node's
// containerd: no Docker build, no registry.
func (im *images) collectorImage(ctx context.Context, bin string) (string, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("collector image: %w", err)
	}
	sum := sha256.Sum256(data)
	ref := collectorRepo + ":" + hex.EncodeToString(sum[:])[:16]
	if im.sock == "" {
		if im.registry == "" {
			return "", fmt.Errorf("collector image: no node containerd to load it into (set %s) and no kubernetes.registry to push it to", EnvContainerdSock)
		}
		return im.pushCollector(ctx, ref, data)
	}
	full := normalize(ref)
	out, err := exec.CommandContext(ctx, "ctr", "--address", im.sock, "-n", ctrNamespace, "images", "ls", "-q", "name=="+full).Output()
	if err == nil && strings.TrimSpace(string(out)) == full {
		return ref, nil
	}
	archive, err := ociArchive(full, data)
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ctr", "--address", im.sock, "-n", ctrNamespace, "images", "import", "-")
	cmd.Stdin, cmd.Stderr = bytes.NewReader(archive), &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("collector image %s is not loadable into the node's containerd at %s: %w: %s", ref, im.sock, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return ref, nil
}

// The collector image runs /msctl as a non-root user.
const (
	collectorEntrypoint = "/msctl"
	collectorUser       = "65532:65532"
)

// collectorLayer is the collector image's one layer, uncompressed: /msctl.
func collectorLayer(bin []byte) ([]byte, error) {
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	if err := lw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(collectorEntrypoint, "/"), Mode: 0o755, Size: int64(len(bin))}); err != nil {
		return nil, err
	}
	if _, err := lw.Write(bin); err != nil {
		return nil, err
	}
	if err := lw.Close(); err != nil {
		return nil, err
	}
	return layer.Bytes(), nil
}

// ociArchive is an OCI image layout, as a tar, of one uncompressed layer
// holding /msctl.
func ociArchive(name string, bin []byte) ([]byte, error) {
	layer, err := collectorLayer(bin)
	if err != nil {
		return nil, err
	}
	type descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	blobs := map[string][]byte{}
	add := func(mediaType string, b []byte) descriptor {
		s := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(s[:])
		blobs[d] = b
		return descriptor{MediaType: mediaType, Digest: d, Size: len(b)}
	}
	layerDesc := add("application/vnd.oci.image.layer.v1.tar", layer)
	config, err := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": []string{collectorEntrypoint}, "User": collectorUser},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	if err != nil {
		return nil, err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": add("application/vnd.oci.image.config.v1+json", config),
		"layers": []descriptor{layerDesc},
	})
	if err != nil {
		return nil, err
	}
	md := add("application/vnd.oci.image.manifest.v1+json", manifest)
	md.Annotations = map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name[strings.LastIndexByte(name, ':')+1:]}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []descriptor{md}})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	files := []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}}
	for d, b := range blobs {
		files = append(files, struct {
			name string
			data []byte
		}{"blobs/sha256/" + strings.TrimPrefix(d, "sha256:"), b})
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), tw.Close()
}
