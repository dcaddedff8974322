package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/manifest"
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
		return o.withoutAgent(ctx, m, begin)
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

// withoutAgent cleans up after an agent that is gone: a killed one may have
// left processes behind, or containers, which outlive it; --volumes still
// has data to remove.
func (o *downOptions) withoutAgent(ctx context.Context, m *manifest.Manifest, begin time.Time) error {
	rt, err := newRuntime(local.Name, m, nil, io.Discard)
	if err != nil {
		return err
	}
	if err := rt.Cleanup(ctx, o.volumes); err != nil {
		return err
	}
	rtName, err := resolveRuntime(ctx, "auto", m)
	if err != nil {
		return err
	}
	left := 0
	if rtName == docker.Name {
		drt, err := docker.New(docker.Options{Manifest: m})
		if err != nil {
			return err
		}
		defer drt.Close()
		if left, err = drt.Containers(ctx); err != nil {
			return err
		}
		// Stop the infra gracefully first, so that its data stays
		// consistent, then remove everything.
		if err := drt.StopInfra(ctx, 10*time.Second); err != nil {
			return err
		}
		if err := drt.Cleanup(ctx, o.volumes); err != nil {
			return err
		}
	}
	if left > 0 {
		fmt.Fprintf(o.root.stderr, "no agent was running; removed the %d containers it left in %s\n", left, round(time.Since(begin)))
	} else {
		fmt.Fprintln(o.root.stderr, "nothing is up")
	}
	if o.volumes {
		fmt.Fprintln(o.root.stderr, "removed the data")
	}
	return nil
}
