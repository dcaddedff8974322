package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	dockerclient "github.com/docker/docker/client"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/testenv"
)

// uniqueProject names a workspace no other test (or person) uses.
func uniqueProject(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// newRuntime returns a Runtime for m whose containers, network, volumes and
// images are all removed when the test ends.
func newRuntime(t testing.TB, m *manifest.Manifest) *docker.Runtime {
	t.Helper()
	rt, err := docker.New(docker.Options{Project: m.Project, Dir: m.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.RemoveDockerWorkspace(t, m.Project) })
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestConformance(t *testing.T) {
	testenv.RequireDocker(t)
	projects := map[runtime.Runtime]string{}
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		m := runtimetest.EchoWorkspace(t, uniqueProject(t))
		rt := newRuntime(t, m)
		projects[rt] = m.Project
		return rt
	}, func(t *testing.T, rt runtime.Runtime, component string) {
		name := "msctl-" + projects[rt] + "-" + component
		if err := engine(t).ContainerKill(context.Background(), name, "KILL"); err != nil {
			t.Fatalf("docker kill %s: %v", name, err)
		}
	})
}

// engine connects to Docker for a test's own look at a workspace; the
// connection closes when the test ends.
func engine(t testing.TB) *dockerclient.Client {
	t.Helper()
	cli, err := docker.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// leftovers lists what Docker still holds of a workspace.
func leftovers(t testing.TB, project string) []string {
	t.Helper()
	cli := engine(t)
	ctx := context.Background()
	label := filters.NewArgs(filters.Arg("label", docker.LabelWorkspace+"="+project))
	var out []string
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: label})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: label})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		out = append(out, "network "+n.Name)
	}
	return out
}

func volumesOf(t testing.TB, project string) []string {
	t.Helper()
	cli := engine(t)
	vs, err := cli.VolumeList(context.Background(), volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelWorkspace+"="+project))})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs.Volumes {
		out = append(out, v.Name)
	}
	return out
}
