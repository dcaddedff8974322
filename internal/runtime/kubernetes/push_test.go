package kubernetes

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/manifest"
)

// TestRegistry is a real OCI registry (go-containerregistry's) on
// 127.0.0.1; writes counts the requests that store something. Exported to
// the package's external tests (it exists in test builds only).
var TestRegistry = testRegistry

func testRegistry(t *testing.T) (host string, writes *atomic.Int64) {
	t.Helper()
	writes = &atomic.Int64{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writes.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), writes
}

// The image Build pushes is the one `msctl export k8s --tag HASH` names.
func TestRegistryRefIsWhatExportNames(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "orders"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "project: shop\nkubernetes:\n  registry: 127.0.0.1:5000/team\nservices:\n  orders:\n    path: ./orders\n    language: go\n"
	if err := os.WriteFile(filepath.Join(dir, manifest.FileName), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(filepath.Join(dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := gen.FromManifest(m, gen.Options{Tags: map[string]string{"orders": "0123abcd"}})
	if err != nil {
		t.Fatal(err)
	}
	got := registryRef(m.Kubernetes.Registry, m.Project, "orders", "msctl/shop-orders:0123abcd")
	if want := "127.0.0.1:5000/team/msctl/shop-orders:0123abcd"; got != want {
		t.Errorf("registryRef = %q, want %q", got, want)
	}
	if spec.Services[0].Image != got {
		t.Errorf("export names %q, the runtime pushes %q", spec.Services[0].Image, got)
	}
}

// A registry that has the image at that digest gets nothing written; one
// without it, or with another image under the tag, gets it pushed.
func TestPushSkipsWhatTheRegistryHas(t *testing.T) {
	host, writes := testRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/team/msctl/shop-orders:abc"
	digest, _ := img.Digest()
	dst, _ := name.ParseReference(ref)
	if there, err := present(ctx, dst, digest, nil); err != nil || there {
		t.Fatalf("present before the push = %v, %v; want false, nil", there, err)
	}
	cached, err := push(ctx, img, ref, host+"/team")
	if err != nil || cached {
		t.Fatalf("first push = %v, %v; want pushed", cached, err)
	}
	if writes.Load() == 0 {
		t.Fatal("the first push wrote nothing to the registry")
	}
	before := writes.Load()
	cached, err = push(ctx, img, ref, host+"/team")
	if err != nil || !cached {
		t.Fatalf("second push = %v, %v; want cached", cached, err)
	}
	if n := writes.Load() - before; n != 0 {
		t.Errorf("second push wrote %d times, want none", n)
	}
	other, _ := random.Image(1024, 1)
	if cached, err = push(ctx, other, ref, host+"/team"); err != nil || cached {
		t.Fatalf("push of another image under the same tag = %v, %v; want pushed", cached, err)
	}
}

// A failed push names the registry and the fix.
func TestPushErrors(t *testing.T) {
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, "login first", http.StatusUnauthorized)
	}))
	defer locked.Close()
	lockedHost := strings.TrimPrefix(locked.URL, "http://")
	for _, tc := range []struct {
		what, registry string
		want           []string
	}{
		{"needs a login", lockedHost + "/team", []string{"registry " + lockedHost + " refuses it", "docker login " + lockedHost}},
		{"not a registry", "Not A Host/team", []string{`kubernetes.registry "Not A Host/team"`, "host[:port][/path]"}},
		{"nobody answers", "127.0.0.1:1/team", []string{"registry 127.0.0.1:1", "kubernetes.registry (127.0.0.1:1/team", "docker login 127.0.0.1:1"}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			begin := time.Now()
			_, err := push(ctx, img, registryRef(tc.registry, "shop", "orders", "msctl/shop-orders:abc"), tc.registry)
			if err == nil {
				t.Fatal("push succeeded")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if d := time.Since(begin); d > apiTimeout+time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// Without a node containerd the collector image is pushed: the same one
// layer, entrypoint and user as the node import, and once only.
func TestCollectorPushedToRegistry(t *testing.T) {
	host, writes := testRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin := []byte("#!not really msctl\n")
	ref, err := (&images{registry: host + "/team"}).pushCollector(ctx, collectorRepo+":0123", bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/team/" + collectorRepo + ":0123"; ref != want {
		t.Errorf("ref = %q, want %q", ref, want)
	}
	dst, _ := name.ParseReference(ref)
	img, err := remote.Image(dst)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || !slices.Equal(cfg.Config.Entrypoint, []string{collectorEntrypoint}) || cfg.Config.User != collectorUser {
		t.Errorf("config = %s/%s entrypoint %v user %q", cfg.OS, cfg.Architecture, cfg.Config.Entrypoint, cfg.Config.User)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil || "/"+h.Name != collectorEntrypoint || h.Mode&0o111 == 0 {
		t.Fatalf("layer entry = %+v, %v; want an executable %s", h, err, collectorEntrypoint)
	}
	if got, _ := io.ReadAll(tr); !bytes.Equal(got, bin) {
		t.Errorf("layer holds %q, want the binary", got)
	}
	before := writes.Load()
	if _, err := (&images{registry: host + "/team"}).pushCollector(ctx, collectorRepo+":0123", bin); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load() - before; n != 0 {
		t.Errorf("pushing it again wrote %d times, want none", n)
	}
}
