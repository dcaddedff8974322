package gen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const goldenCollector = "msctl/shop-collector:golden"

// shopObjects generates the objects of the repository's msctl.yaml, after
// change, with fixed passwords so that the output is reproducible.
func shopObjects(t *testing.T, change func(*manifest.Manifest)) []Object {
	t.Helper()
	m := loadShop(t)
	if change != nil {
		change(m)
	}
	spec, err := FromManifest(m, Options{
		Tags:           map[string]string{"gateway": "0123456789ab"},
		Password:       func(role string) (string, error) { return "pw-" + role, nil },
		CollectorImage: goldenCollector,
		CollectorArgs:  []string{"agent", "collect"},
	})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Objects(spec)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func loadShop(t *testing.T) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Load(filepath.Join(testenv.RepoRoot(), manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ha is the shop with three-node NATS and etcd clusters, a replicated
// service and an autoscaled one.
func ha(m *manifest.Manifest) {
	m.Infra.Broker.Replicas = 3
	m.Infra.Registry.Replicas = 3
	m.Kubernetes = manifest.Kubernetes{Namespace: "shop-ha", Registry: "registry.example.com/team"}
	m.Services["inventory"].Replicas = 2
	m.Services["orders"].Autoscale = &manifest.Autoscale{Min: 2, Max: 5, CPU: 70}
}

// TestGolden pins the exported kustomize base, every file in order: a
// change to what msctl ships shows up in review. Run with -update to accept.
func TestGolden(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*manifest.Manifest)
	}{{"shop", nil}, {"shop-ha", ha}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteKustomize(dir, shopObjects(t, tt.change)); err != nil {
				t.Fatal(err)
			}
			got := concatBase(t, dir)
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the generated base; if the change is intended, run go test ./internal/k8s/gen -update and review the diff", path)
			}
		})
	}
}

// concatBase joins kustomization.yaml and the files it lists, in its
// order, each under a "# file:" line.
func concatBase(t *testing.T, dir string) []byte {
	t.Helper()
	files, err := listedResources(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range append([]string{KustomizationFile}, files...) {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("# file: " + f + "\n")
		b.Write(data)
		b.WriteString("---\n")
	}
	return b.Bytes()
}

func TestWriteKustomizeRemovesStaleFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteKustomize(dir, shopObjects(t, ha)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteKustomize(dir, shopObjects(t, nil)); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"horizontalpodautoscaler-orders.yaml", "poddisruptionbudget-nats.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still there after the second write (err %v)", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Errorf("a file the base never listed was removed: %v", err)
	}
}
