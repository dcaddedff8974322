package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/internal/manifest"
)

// WriteFiles writes files, by path relative to dir, creating directories
// as needed.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Manifest writes yaml as dir's msctl.yaml and loads it, failing t unless
// it is a valid manifest.
func Manifest(t testing.TB, dir, yaml string) *manifest.Manifest {
	t.Helper()
	WriteFiles(t, dir, map[string]string{manifest.FileName: yaml})
	m, err := manifest.Load(filepath.Join(dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
