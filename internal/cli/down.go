package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/doctor"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/runtime/local"
)

type downOptions struct {
	root    *rootOptions
	volumes bool
}

func newDownCmd(root *rootOptions) *cobra.Command {
	o := &downOptions{root: root}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop everything of this workspace; data is kept unless --volumes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	cmd.Flags().BoolVar(&o.volumes, "volumes", false, "also remove the data of Postgres, NATS and etcd")
	return cmd
}

func (o *downOptions) run(ctx context.Context) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	begin := time.Now()
	c, err := agent.Connect(m.Dir())
	if errors.Is(err, agent.ErrNotRunning) {
		// No agent, but a killed one may have left processes behind, and
		// --volumes still has data to remove.
		rt, err := newRuntime(local.Name, m, nil, io.Discard)
		if err != nil {
			return err
		}
		if err := rt.Cleanup(ctx, o.volumes); err != nil {
			return err
		}
		if doctor.PickRuntime(ctx) == docker.Name {
			// Containers outlive a killed agent: stop the infra gracefully
			// (its data stays consistent), then remove everything.
			drt, err := newRuntime(docker.Name, m, nil, io.Discard)
			if err != nil {
				return err
			}
			if err := drt.StopInfra(ctx, 10*time.Second); err != nil {
				return err
			}
			if err := drt.Cleanup(ctx, o.volumes); err != nil {
				return err
			}
		}
		fmt.Fprintln(o.root.stderr, "nothing is up")
		if o.volumes {
			fmt.Fprintln(o.root.stderr, "removed the data")
		}
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.Down(ctx, o.volumes); err != nil {
		return err
	}
	fmt.Fprintf(o.root.stderr, "stopped in %s\n", round(time.Since(begin)))
	if o.volumes {
		fmt.Fprintln(o.root.stderr, "removed the data")
	}
	return nil
}
