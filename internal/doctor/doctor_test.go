package doctor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/manifest"
)

// fakeDocker is an engine whose daemon answers unless err is set and which
// holds every image except those in missing.
type fakeDocker struct {
	info     DockerInfo
	err      error
	missing  []string
	imageErr error
}

func (f fakeDocker) Probe(context.Context) (DockerInfo, error) { return f.info, f.err }

func (f fakeDocker) MissingImages(_ context.Context, refs []string) ([]string, error) {
	if f.imageErr != nil {
		return nil, f.imageErr
	}
	var out []string
	for _, r := range refs {
		if slices.Contains(f.missing, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

var _ DockerProber = fakeDocker{}

// fakeEnv is a machine with everything present; tests break one piece each.
func fakeEnv() Env {
	return Env{
		Docker:      fakeDocker{info: DockerInfo{Version: "20.10.24", APIVersion: "1.41"}},
		Images:      Images(nil),
		GoVersion:   func(context.Context) (string, error) { return "go version go1.26.8 linux/amd64\n", nil },
		PostgresBin: func() (string, error) { return "/usr/lib/postgresql/15/bin", nil },
		PostgresVersion: func(context.Context, string) (string, error) {
			return "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n", nil
		},
		PactLib:           func() (string, error) { return "/usr/local/lib/libpact_ffi.so", nil },
		GatewayPort:       8080,
		GatewayPortSource: "msctl.yaml",
		PortFree:          func(int) error { return nil },
		PortHolder:        func(int) string { return "" },
	}
}

func TestRun(t *testing.T) {
	noDocker := fakeDocker{err: errors.New("ping docker daemon: connection refused")}
	noImages := fakeDocker{info: DockerInfo{Version: "20.10.24", APIVersion: "1.41"}, missing: []string{"postgres:15", "bitnami/etcd:3.5"}}
	noPostgres := func(e *Env) { e.PostgresBin = func() (string, error) { return "", errors.New("initdb not found") } }
	tests := []struct {
		name      string
		mutate    func(*Env)
		runtime   string
		runtimeOK bool
		failed    []string
		details   map[string]string
	}{
		{
			name:      "everything present",
			mutate:    func(*Env) {},
			runtime:   RuntimeDocker,
			runtimeOK: true,
			details: map[string]string{
				CheckDocker:   "engine 20.10.24, API 1.41",
				CheckImages:   "postgres:15, nats:2.15, bitnami/etcd:3.5 present",
				CheckGo:       "go1.26.8 linux/amd64",
				CheckPostgres: "PostgreSQL 15.14 in /usr/lib/postgresql/15/bin",
				CheckPort:     "gateway port 8080 (msctl.yaml) is free",
				CheckRuntime:  "auto picks docker (the Docker daemon answers and holds the infra images)",
			},
		},
		{
			name:      "no docker, postgres present",
			mutate:    func(e *Env) { e.Docker = noDocker },
			runtime:   RuntimeLocal,
			runtimeOK: true,
			failed:    []string{CheckDocker, CheckImages},
			details:   map[string]string{CheckImages: "not checked: no Docker daemon answers"},
		},
		{
			name: "no docker, no postgres",
			mutate: func(e *Env) {
				e.Docker = noDocker
				noPostgres(e)
			},
			runtime: RuntimeLocal,
			failed:  []string{CheckDocker, CheckImages, CheckPostgres, CheckRuntime},
			details: map[string]string{CheckRuntime: "it cannot run without Postgres server binaries"},
		},
		{
			name:      "docker without the infra images picks local",
			mutate:    func(e *Env) { e.Docker = noImages },
			runtime:   RuntimeLocal,
			runtimeOK: true,
			failed:    []string{CheckImages},
			details: map[string]string{
				CheckDocker:  "engine 20.10.24",
				CheckImages:  "missing from the Docker engine: postgres:15, bitnami/etcd:3.5",
				CheckRuntime: "auto picks local (the Docker daemon answers but lacks the infra images postgres:15, bitnami/etcd:3.5)",
			},
		},
		{
			name: "docker without the images, no postgres",
			mutate: func(e *Env) {
				e.Docker = noImages
				noPostgres(e)
			},
			runtime: RuntimeLocal,
			failed:  []string{CheckImages, CheckPostgres, CheckRuntime},
			details: map[string]string{CheckRuntime: "it cannot run without Postgres server binaries"},
		},
		{
			name: "images cannot be inspected",
			mutate: func(e *Env) {
				e.Docker = fakeDocker{imageErr: errors.New("inspect image postgres:15: context deadline exceeded")}
			},
			runtime:   RuntimeLocal,
			runtimeOK: true,
			failed:    []string{CheckImages},
			details:   map[string]string{CheckImages: "context deadline exceeded"},
		},
		{
			name:      "images configured in the manifest",
			mutate:    func(e *Env) { e.Images = []string{"registry.example/pg:16", "nats:2.15", "bitnami/etcd:3.5"} },
			runtime:   RuntimeDocker,
			runtimeOK: true,
			details:   map[string]string{CheckImages: "registry.example/pg:16, nats:2.15, bitnami/etcd:3.5 present"},
		},
		{
			name:      "docker without postgres binaries is fine",
			mutate:    noPostgres,
			runtime:   RuntimeDocker,
			runtimeOK: true,
			failed:    []string{CheckPostgres},
		},
		{
			name: "no go",
			mutate: func(e *Env) {
				e.GoVersion = func(context.Context) (string, error) { return "", errors.New("exec: go: not found") }
			},
			runtime: RuntimeDocker,
			failed:  []string{CheckGo, CheckRuntime},
		},
		{
			name:      "no pact, port taken",
			runtime:   RuntimeDocker,
			runtimeOK: true,
			mutate: func(e *Env) {
				e.PactLib = func() (string, error) { return "", errors.New("libpact_ffi.so not found") }
				e.PortFree = func(int) error { return errInUse }
				e.PortHolder = func(int) string { return "nginx (pid 42)" }
			},
			failed:  []string{CheckPact, CheckPort},
			details: map[string]string{CheckPort: "gateway port 8080 (msctl.yaml) is in use by nginx (pid 42)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fakeEnv()
			tt.mutate(&env)
			r := Run(context.Background(), env)
			if r.Runtime != tt.runtime || r.RuntimeOK != tt.runtimeOK {
				t.Errorf("runtime = %s ok=%v, want %s ok=%v", r.Runtime, r.RuntimeOK, tt.runtime, tt.runtimeOK)
			}
			names := []string{CheckDocker, CheckImages, CheckGo, CheckPostgres, CheckPact, CheckPort, CheckRuntime}
			if len(r.Checks) != len(names) {
				t.Fatalf("got %d checks, want %d", len(r.Checks), len(names))
			}
			var failed []string
			for i, c := range r.Checks {
				if c.Name != names[i] {
					t.Errorf("check %d = %s, want %s", i, c.Name, names[i])
				}
				if !c.OK {
					failed = append(failed, c.Name)
					if c.Fix == "" {
						t.Errorf("failing check %s has no fix", c.Name)
					}
				}
				if want, ok := tt.details[c.Name]; ok && !strings.Contains(c.Detail, want) {
					t.Errorf("%s detail = %q, want it to contain %q", c.Name, c.Detail, want)
				}
			}
			if strings.Join(failed, ",") != strings.Join(tt.failed, ",") {
				t.Errorf("failed = %v, want %v", failed, tt.failed)
			}
		})
	}
}

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
		{name: "daemon and images", docker: fakeDocker{}, runtime: RuntimeDocker, answers: true},
		{
			name: "no daemon", docker: fakeDocker{err: errors.New("ping docker daemon: refused")}, runtime: RuntimeLocal,
			require: "the docker runtime needs a Docker daemon: ping docker daemon: refused\n\tfix: install Docker",
		},
		{
			name: "images missing", docker: fakeDocker{missing: []string{"nats:2.15"}}, runtime: RuntimeLocal, answers: true,
			missing: []string{"nats:2.15"},
			require: "the docker runtime needs infra images the local Docker engine does not have: nats:2.15\n" +
				"\tfix: run `make images` (offline stand-ins) or `docker pull nats:2.15`, or use --runtime local",
		},
		{
			name: "images not inspectable", docker: fakeDocker{imageErr: errors.New("inspect image nats:2.15: EOF")}, runtime: RuntimeLocal, answers: true,
			require: "the docker runtime cannot check its infra images: inspect image nats:2.15: EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := probeDocker(context.Background(), tt.docker, images)
			p := st.pick()
			if p.Runtime != tt.runtime || p.DockerAnswers != tt.answers || !slices.Equal(p.Missing, tt.missing) || p.Reason == "" {
				t.Errorf("pick = %+v, want %s answers=%v missing=%v", p, tt.runtime, tt.answers, tt.missing)
			}
			err := st.require()
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

func writeExec(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestFindPactLib(t *testing.T) {
	a, b, sys := t.TempDir(), t.TempDir(), t.TempDir()
	writeExec(t, filepath.Join(b, PactLibName))
	writeExec(t, filepath.Join(sys, PactLibName))
	if got, err := findPactLib(a+":"+b, []string{sys}); err != nil || got != filepath.Join(b, PactLibName) {
		t.Errorf("LD_LIBRARY_PATH: %q, %v", got, err)
	}
	if got, err := findPactLib("", []string{a, sys}); err != nil || got != filepath.Join(sys, PactLibName) {
		t.Errorf("system: %q, %v", got, err)
	}
	if _, err := findPactLib("", []string{a}); err == nil || !strings.Contains(err.Error(), a) {
		t.Errorf("missing: %v", err)
	}
}

func TestPortFreeAndHolder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if err := portFree(port); !errors.Is(err, errInUse) {
		t.Errorf("portFree(taken) = %v", err)
	}
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	want := "(pid " + strconv.Itoa(os.Getpid()) + ")"
	if got := PortHolder("/proc", port); !strings.HasSuffix(got, want) {
		t.Errorf("PortHolder = %q, want suffix %q", got, want)
	}
	l.Close()
	if err := portFree(port); err != nil {
		t.Errorf("portFree(released) = %v", err)
	}
	if got := PortHolder("/proc", port); got != "" {
		t.Errorf("PortHolder(released) = %q", got)
	}
}
