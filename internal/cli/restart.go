package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/runtime"
)

type restartOptions struct {
	root *rootOptions
}

func newRestartCmd(root *rootOptions) *cobra.Command {
	o := &restartOptions{root: root}
	return command("restart NAME", "Restart one service gracefully, or one infra component (postgres, nats, etcd) with its data, and wait until it is ready again", cobra.ExactArgs(1),
		func(ctx context.Context, args []string) error { return o.run(ctx, args[0]) })
}

func (o *restartOptions) run(ctx context.Context, name string) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	if _, ok := m.Services[name]; !ok && !slices.Contains(runtime.InfraComponents, name) {
		return usageError(fmt.Errorf("unknown service or infra component %q (services: %s; infra: %s)",
			name, strings.Join(m.ServiceNames(), ", "), strings.Join(runtime.InfraComponents, ", ")))
	}
	c, err := o.root.connect(m.Dir())
	if err != nil {
		return err
	}
	begin := time.Now()
	if err := c.Restart(ctx, name); err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	fmt.Fprintf(o.root.stderr, "restarted %s in %s\n", name, round(time.Since(begin)))
	return nil
}
