package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/infra/freeport"
	"github.com/msctl/msctl/internal/runtime/pick"
)

// fakeDocker is an engine whose daemon answers unless err is set and which
// holds every image except those in missing.
type fakeDocker struct {
	info     pick.DockerInfo
	err      error
	missing  []string
	imageErr error
}

func (f fakeDocker) Probe(context.Context) (pick.DockerInfo, error) { return f.info, f.err }

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

var _ pick.DockerProber = fakeDocker{}

// fakeEnv is a machine with everything present; tests break one piece each.
func fakeEnv() Env {
	return Env{
		Docker:      fakeDocker{info: pick.DockerInfo{Version: "20.10.24", APIVersion: "1.41"}},
		Images:      pick.Images(nil),
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
		Kubernetes: func(context.Context) (KubeInfo, error) {
			return KubeInfo{Context: "kind-dev", Server: "https://127.0.0.1:6443", Version: "v1.37.2"}, nil
		},
	}
}

func TestRun(t *testing.T) {
	noDocker := fakeDocker{err: errors.New("ping docker daemon: connection refused")}
	noImages := fakeDocker{info: pick.DockerInfo{Version: "20.10.24", APIVersion: "1.41"}, missing: []string{"postgres:15", "bitnami/etcd:3.5"}}
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
			runtime:   pick.Docker,
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
			runtime:   pick.Local,
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
			runtime: pick.Local,
			failed:  []string{CheckDocker, CheckImages, CheckPostgres, CheckRuntime},
			details: map[string]string{CheckRuntime: "it cannot run without Postgres server binaries"},
		},
		{
			name:      "docker without the infra images picks local",
			mutate:    func(e *Env) { e.Docker = noImages },
			runtime:   pick.Local,
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
			runtime: pick.Local,
			failed:  []string{CheckImages, CheckPostgres, CheckRuntime},
			details: map[string]string{CheckRuntime: "it cannot run without Postgres server binaries"},
		},
		{
			name: "images cannot be inspected",
			mutate: func(e *Env) {
				e.Docker = fakeDocker{imageErr: errors.New("inspect image postgres:15: context deadline exceeded")}
			},
			runtime:   pick.Local,
			runtimeOK: true,
			failed:    []string{CheckImages},
			details:   map[string]string{CheckImages: "context deadline exceeded"},
		},
		{
			name:      "images configured in the manifest",
			mutate:    func(e *Env) { e.Images = []string{"registry.example/pg:16", "nats:2.15", "bitnami/etcd:3.5"} },
			runtime:   pick.Docker,
			runtimeOK: true,
			details:   map[string]string{CheckImages: "registry.example/pg:16, nats:2.15, bitnami/etcd:3.5 present"},
		},
		{
			name:      "docker without postgres binaries is fine",
			mutate:    noPostgres,
			runtime:   pick.Docker,
			runtimeOK: true,
			failed:    []string{CheckPostgres},
		},
		{
			name: "no go",
			mutate: func(e *Env) {
				e.GoVersion = func(context.Context) (string, error) { return "", errors.New("exec: go: not found") }
			},
			runtime: pick.Docker,
			failed:  []string{CheckGo, CheckRuntime},
		},
		{
			name:      "no pact, port taken",
			runtime:   pick.Docker,
			runtimeOK: true,
			mutate: func(e *Env) {
				e.PactLib = func() (string, error) { return "", errors.New("libpact_ffi.so not found") }
				e.PortFree = func(int) error { return fmt.Errorf("port 8080: %w", freeport.ErrInUse) }
				e.PortHolder = func(int) string { return "pid 42 (nginx)" }
			},
			failed:  []string{CheckPact, CheckPort},
			details: map[string]string{CheckPort: "gateway port 8080 (msctl.yaml) is in use by pid 42 (nginx)"},
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
			names := []string{CheckDocker, CheckImages, CheckGo, CheckPostgres, CheckPact, CheckPort, CheckKubernetes, CheckRuntime}
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
