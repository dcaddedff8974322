// Package gobuildtest lays out small Go modules for the tests of what
// compiles services (gobuild's keys, the local runtime's Build).
package gobuildtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Module lays out a small module, example.com/m: a service (svc) importing
// an in-module library, which embeds an asset directory, and an unrelated
// package. It returns the module's root.
func Module(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":                "module example.com/m\n\ngo 1.26\n",
		"go.sum":                "",
		"svc/main.go":           "package main\n\nimport _ \"example.com/m/lib\"\n\nfunc main() {}\n",
		"svc/main_test.go":      "package main\n",
		"svc/README.md":         "svc\n",
		"lib/lib.go":            "package lib\n\nimport (\n\t\"embed\"\n\t_ \"fmt\"\n)\n\n//go:embed sql\nvar SQL embed.FS\n",
		"lib/sql/001_init.sql":  "create table t (id int);\n",
		"lib/sub/sub.go":        "package sub\n",
		"other/other.go":        "package other\n",
		"lib/sql/deep/more.sql": "select 1;\n",
	} {
		Write(t, filepath.Join(root, filepath.FromSlash(name)), body)
	}
	return root
}

// Write writes a file, creating its directory.
func Write(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
