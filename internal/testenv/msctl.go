package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/msctl/msctl/internal/infra/freeport"
)

// RepoRoot is the root of the msctl module: where msctl.yaml and the shop's
// services live.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BuildMsctl compiles cmd/msctl into dst. End-to-end tests need the real
// binary: `up -d` starts its agent by re-executing it. It is static
// (CGO_ENABLED=0), as `make build` makes it: the docker runtime runs it in
// the chaos proxy's FROM-scratch container, and the kubernetes runtime's
// collector image is that binary alone, with no libc beside it.
func BuildMsctl(dst string) error {
	cmd := exec.Command("go", "build", "-o", dst, "./cmd/msctl")
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build msctl: %w\n%s", err, out)
	}
	return nil
}

// Msctl builds msctl into a temporary directory of tb and returns its path.
func Msctl(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "msctl")
	if err := BuildMsctl(bin); err != nil {
		tb.Fatal(err)
	}
	return bin
}

// FreePort is a loopback TCP port nobody listens on right now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	port, err := freeport.Get()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// ShopManifest writes dir/msctl.yaml: the repository's manifest made usable
// from a workspace outside the checkout, so a test neither writes .msctl/
// into the checkout nor needs port 8080. Service paths become absolute, the
// gateway listens on gatewayPort, and the project is renamed unless project
// is empty (Docker resources are named after it). It returns the path.
func ShopManifest(dir, project string, gatewayPort int) (string, error) {
	root := RepoRoot()
	raw, err := os.ReadFile(filepath.Join(root, "msctl.yaml"))
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", fmt.Errorf("parse msctl.yaml: %w", err)
	}
	if project != "" {
		doc["project"] = project
	}
	gw, _ := doc["gateway"].(map[string]any)
	if gw == nil {
		gw = map[string]any{}
		doc["gateway"] = gw
	}
	gw["port"] = gatewayPort
	services, ok := doc["services"].(map[string]any)
	if !ok {
		return "", fmt.Errorf("msctl.yaml has no services map")
	}
	for name, v := range services {
		svc, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("msctl.yaml: service %s is not a map", name)
		}
		p, _ := svc["path"].(string)
		if p == "" {
			p = "services/" + name
		}
		if !filepath.IsAbs(p) {
			svc["path"] = filepath.Join(root, p)
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "msctl.yaml")
	return path, os.WriteFile(path, out, 0o644)
}
