package gobuild_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/internal/runtime/gobuild"
	"github.com/msctl/msctl/internal/runtime/gobuild/gobuildtest"
)

func TestSourceKey(t *testing.T) {
	tests := []struct {
		name    string
		edit    string // file to change, relative to the module root
		changed bool
	}{
		{"service source", "svc/main.go", true},
		{"service asset", "svc/README.md", true},
		{"imported package", "lib/lib.go", true},
		{"embedded asset", "lib/sql/001_init.sql", true},
		{"nested embedded asset", "lib/sql/deep/more.sql", true},
		{"go.mod", "go.mod", true},
		{"go.sum", "go.sum", true},
		{"service test", "svc/main_test.go", false},
		{"package not imported", "other/other.go", false},
		{"subpackage not imported", "lib/sub/sub.go", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := gobuildtest.Module(t)
			svc := filepath.Join(root, "svc")
			before, err := gobuild.NewKeyer(root).Key(svc)
			if err != nil || before == "" {
				t.Fatalf("key = %q, %v", before, err)
			}
			p := filepath.Join(root, filepath.FromSlash(tt.edit))
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("\n// edited\n"); err != nil {
				t.Fatal(err)
			}
			f.Close()
			after, err := gobuild.NewKeyer(root).Key(svc)
			if err != nil {
				t.Fatal(err)
			}
			if (after != before) != tt.changed {
				t.Errorf("key changed = %v after editing %s, want %v", after != before, tt.edit, tt.changed)
			}
		})
	}
}

func TestSourceKeyRefusesOutsideSources(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, root string)
	}{
		{"go.work", func(t *testing.T, root string) {
			gobuildtest.Write(t, filepath.Join(root, "go.work"), "go 1.26\n\nuse .\n")
		}},
		{"GOWORK", func(t *testing.T, root string) { t.Setenv("GOWORK", "/elsewhere/go.work") }},
		{"vendor", func(t *testing.T, root string) {
			gobuildtest.Write(t, filepath.Join(root, "vendor", "modules.txt"), "")
		}},
		{"directory replace", func(t *testing.T, root string) {
			gobuildtest.Write(t, filepath.Join(root, "go.mod"), "module example.com/m\n\ngo 1.26\n\nreplace example.com/x => ../x\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := gobuildtest.Module(t)
			tt.setup(t, root)
			if key, err := gobuild.NewKeyer(root).Key(filepath.Join(root, "svc")); err == nil || key != "" {
				t.Errorf("key = %q, %v; want none", key, err)
			}
		})
	}
}

func BenchmarkSourceKeyGateway(b *testing.B) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := gobuild.NewKeyer(root).Key(filepath.Join(root, "services", "gateway")); err != nil {
			b.Fatal(err)
		}
	}
}
