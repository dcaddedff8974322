package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/testenv"
)

// missingImageWorkspace writes a workspace whose Postgres image exists in
// no engine (and, msctl never pulling, never will) and returns its manifest.
func missingImageWorkspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{
		"services/a/main.go": "package main\n\nfunc main() {}\n",
		"go.mod":             "module example.com/ws\n\ngo 1.24\n",
		manifest.FileName: "project: cli-missing-image\ninfra:\n  postgres:\n    image: msctl-test/none\n    version: \"0\"\n" +
			"services:\n  a:\n    path: services/a\n    language: go\n",
	})
	path := filepath.Join(dir, manifest.FileName)
	return path
}

// TestUpDockerMissingImage: --runtime docker with an infra image the engine
// lacks fails at once with the fix, exit 1, having built and started nothing.
func TestUpDockerMissingImage(t *testing.T) {
	testenv.RequireDocker(t)
	path := missingImageWorkspace(t)
	for _, args := range [][]string{{"up"}, {"up", "-d"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"--file", path}, append(args, "--runtime", "docker")...), &stdout, &stderr, newRootCmd)
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s", code, stderr.String())
			}
			for _, want := range []string{
				"the docker runtime needs infra images the local Docker engine does not have: msctl-test/none:0",
				"fix: run `docker pull msctl-test/none:0`, or use --runtime local",
			} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), ".msctl")); !os.IsNotExist(err) {
		t.Errorf(".msctl exists (%v): something was started", err)
	}
	c, err := docker.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cs, err := c.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", docker.LabelWorkspace+"=cli-missing-image"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("%d containers of the workspace exist", len(cs))
	}
}

// TestChooseRuntimeAutoWithoutImages: auto skips a Docker engine that lacks
// the infra images and says why.
func TestChooseRuntimeAutoWithoutImages(t *testing.T) {
	testenv.RequireDocker(t)
	m, err := manifest.Load(missingImageWorkspace(t))
	if err != nil {
		t.Fatal(err)
	}
	name, note, err := chooseRuntime(context.Background(), "auto", m)
	if err != nil || name != "local" {
		t.Fatalf("chooseRuntime = %q, %v; want local", name, err)
	}
	want := "docker: images missing (msctl-test/none:0); using the local runtime — run `docker pull msctl-test/none:0` to use docker"
	if note != want {
		t.Errorf("note = %q, want %q", note, want)
	}
}
