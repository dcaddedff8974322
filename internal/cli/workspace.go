package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/manifest"
)

// loadManifest finds (unless -f is given), loads and validates the workspace
// manifest. Every command that acts on a workspace calls it first, so all of
// them agree on what a valid workspace is; its errors exit 2.
func loadManifest(opts *rootOptions) (*manifest.Manifest, error) {
	path, err := manifestPath(opts)
	if err != nil {
		return nil, err
	}
	return manifest.Load(path)
}

// workspaceAgent loads the manifest and reaches its workspace's agent, for
// the commands that only talk to the agent (chaos, dlq).
func workspaceAgent(root *rootOptions) (*agent.Client, error) {
	m, err := loadManifest(root)
	if err != nil {
		return nil, err
	}
	return root.connect(m.Dir())
}

// askAgent reaches the workspace's agent and asks it one thing, e.g.
// askAgent(ctx, root, (*agent.Client).Faults).
func askAgent[T any](ctx context.Context, root *rootOptions, ask func(*agent.Client, context.Context) (T, error)) (T, error) {
	c, err := workspaceAgent(root)
	if err != nil {
		var zero T
		return zero, err
	}
	return ask(c, ctx)
}

// manifestPath returns -f, or the manifest found from the working directory,
// shown relative to it when inside it so messages stay short.
func manifestPath(opts *rootOptions) (string, error) {
	if opts.file != "" {
		return opts.file, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	found, err := manifest.Find(wd)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(wd, found); err == nil && !strings.HasPrefix(rel, "..") {
		return rel, nil
	}
	return found, nil
}

// checkServices rejects, as a usage error, a name that is no service of m:
// every command taking service arguments checks them here first.
func checkServices(m *manifest.Manifest, names []string) error {
	for _, s := range names {
		if _, ok := m.Services[s]; !ok {
			return usageError(fmt.Errorf("unknown service %q (services: %s)", s, strings.Join(m.ServiceNames(), ", ")))
		}
	}
	return nil
}
