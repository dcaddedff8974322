package testenv

import (
	"os"
	"path/filepath"
	"testing"
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
