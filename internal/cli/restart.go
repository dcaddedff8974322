package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

type restartOptions struct {
	root *rootOptions
}

func newRestartCmd(root *rootOptions) *cobra.Command {
	o := &restartOptions{root: root}
	return command("restart SERVICE", "Restart one service gracefully and wait until it is ready again", cobra.ExactArgs(1),
		func(ctx context.Context, args []string) error { return o.run(ctx, args[0]) })
}

func (o *restartOptions) run(ctx context.Context, svc string) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	if err := checkServices(m, []string{svc}); err != nil {
		return err
	}
	c, err := o.root.connect(m.Dir())
	if err != nil {
		return err
	}
	begin := time.Now()
	if err := c.Restart(ctx, svc); err != nil {
		return fmt.Errorf("restart %s: %w", svc, err)
	}
	fmt.Fprintf(o.root.stderr, "restarted %s in %s\n", svc, round(time.Since(begin)))
	return nil
}
