package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

type downOptions struct {
	root    *rootOptions
	volumes bool
}

func newDownCmd(root *rootOptions) *cobra.Command {
	o := &downOptions{root: root}
	cmd := command("down", "Stop everything of this workspace; data is kept unless --volumes", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return o.run(ctx) })
	cmd.Flags().BoolVar(&o.volumes, "volumes", false, "also remove the data of Postgres, NATS and etcd")
	return cmd
}

func (o *downOptions) run(ctx context.Context) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	begin := time.Now()
	c, left, err := o.root.reach(m)
	switch {
	case err != nil:
		return err
	case c != nil:
		if err := c.Down(ctx, o.volumes); err != nil {
			return err
		}
		if o.volumes {
			if err := forgetKubernetes(m); err != nil {
				return err
			}
		}
		fmt.Fprintf(o.root.stderr, "stopped in %s\n", round(time.Since(begin)))
	default:
		// A killed agent may have left processes behind, or containers,
		// which outlive it; --volumes still has data to remove.
		n, err := left.remove(ctx, o.volumes)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(o.root.stderr, "no agent was running; removed the %d containers it left in %s\n", n, round(time.Since(begin)))
		} else {
			fmt.Fprintln(o.root.stderr, "nothing is up")
		}
	}
	if o.volumes {
		fmt.Fprintln(o.root.stderr, "removed the data")
	}
	return nil
}
