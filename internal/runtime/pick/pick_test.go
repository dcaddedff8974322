package pick

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/manifest"
)

// fakeDocker is an engine whose daemon answers unless err is set and which
// lacks the images in missing.
type fakeDocker struct {
	err      error
	missing  []string
	imageErr error
}

func (f fakeDocker) Probe(context.Context) (DockerInfo, error) { return DockerInfo{}, f.err }

func (f fakeDocker) MissingImages(context.Context, []string) ([]string, error) {
	return f.missing, f.imageErr
}

var _ DockerProber = fakeDocker{}

func TestPickRuntime(t *testing.T) {
	images := Images(nil)
	tests := []struct {
		name    string
		docker  fakeDocker
		runtime string
		answers bool
		missing []string
		require string // what the docker runtime's refusal says, "" for none
	}{
		{name: "daemon and images", docker: fakeDocker{}, runtime: Docker, answers: true},
		{
			name: "no daemon", docker: fakeDocker{err: errors.New("ping docker daemon: refused")}, runtime: Local,
			require: "the docker runtime needs a Docker daemon: ping docker daemon: refused\n\tfix: install Docker",
		},
		{
			name: "images missing", docker: fakeDocker{missing: []string{"nats:2.15"}}, runtime: Local, answers: true,
			missing: []string{"nats:2.15"},
			require: "the docker runtime needs infra images the local Docker engine does not have: nats:2.15\n" +
				"\tfix: run `make images` (offline stand-ins) or `docker pull nats:2.15`, or use --runtime local",
		},
		{
			name: "images not inspectable", docker: fakeDocker{imageErr: errors.New("inspect image nats:2.15: EOF")}, runtime: Local, answers: true,
			require: "the docker runtime cannot check its infra images: inspect image nats:2.15: EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Probe(context.Background(), tt.docker, images)
			p := e.Pick()
			if p.Runtime != tt.runtime || p.DockerAnswers != tt.answers || !slices.Equal(p.Missing, tt.missing) || p.Reason == "" {
				t.Errorf("pick = %+v, want %s answers=%v missing=%v", p, tt.runtime, tt.answers, tt.missing)
			}
			err := e.Require()
			switch {
			case tt.require == "" && err != nil:
				t.Errorf("require = %v, want nil", err)
			case tt.require != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.require)):
				t.Errorf("require = %v, want prefix %q", err, tt.require)
			}
		})
	}
}

func TestImagesFix(t *testing.T) {
	for _, tt := range []struct {
		missing []string
		want    string
	}{
		{[]string{"postgres:15", "nats:2.15"}, "run `make images` (offline stand-ins) or `docker pull postgres:15` and `docker pull nats:2.15`, or use --runtime local"},
		// make images builds only the default tags.
		{[]string{"msctl-test/none:0"}, "run `docker pull msctl-test/none:0`, or use --runtime local"},
	} {
		if got := ImagesFix(tt.missing); got != tt.want {
			t.Errorf("ImagesFix(%v) = %q, want %q", tt.missing, got, tt.want)
		}
	}
}

func TestImages(t *testing.T) {
	path := filepath.Join(t.TempDir(), manifest.FileName)
	if err := os.WriteFile(path, []byte("project: p\ninfra:\n  postgres:\n    image: msctl-test/none\n    version: \"0\"\nservices: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Images(m), []string{"msctl-test/none:0", "nats:2.15", "bitnami/etcd:3.5"}; !slices.Equal(got, want) {
		t.Errorf("Images = %v, want %v", got, want)
	}
}

func TestEngineProber(t *testing.T) {
	info, err := EngineProber{}.Probe(context.Background())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs a Docker daemon: %v", err)
		}
		t.Skipf("no Docker daemon: %v", err)
	}
	if info.Version == "" || info.APIVersion == "" {
		t.Errorf("info = %+v", info)
	}
	missing, err := EngineProber{}.MissingImages(context.Background(), []string{"msctl-test/none:0"})
	if err != nil || !slices.Equal(missing, []string{"msctl-test/none:0"}) {
		t.Errorf("MissingImages(nonexistent) = %v, %v", missing, err)
	}
}
