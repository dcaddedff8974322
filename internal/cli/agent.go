package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
)

type agentOptions struct {
	root    *rootOptions
	runtime string
}

// newAgentCmd is the detached agent `msctl up -d` starts in a new session.
// It is hidden: users run up -d, not this.
func newAgentCmd(root *rootOptions) *cobra.Command {
	o := &agentOptions{root: root}
	cmd := &cobra.Command{
		Use:    "agent [service...]",
		Short:  "Run the workspace's agent (started by up -d)",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), args)
		},
	}
	cmd.Flags().StringVar(&o.runtime, "runtime", "local", "runtime to use")
	return cmd
}

func (o *agentOptions) run(ctx context.Context, services []string) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	rtName, err := resolveRuntime(ctx, o.runtime, m)
	if err != nil {
		return err
	}
	a, closeLogs, err := startAgent(m, rtName, o.root.stderr)
	if err != nil {
		if errors.Is(err, agent.ErrAlreadyRunning) {
			return nil
		}
		return err
	}
	defer closeLogs()
	upCtx, cancelUp := context.WithCancel(ctx)
	defer cancelUp()
	upErr := make(chan error, 1)
	go func() { upErr <- a.Up(upCtx, services) }()
	volumes := false
	select {
	case err := <-upErr:
		if err != nil {
			fmt.Fprintf(o.root.stderr, "msctl agent: up failed: %v\n", err)
			// Give up -d a moment to read the failure from the snapshot
			// before the API goes away with the agent.
			time.Sleep(300 * time.Millisecond)
			_ = a.Down(context.Background(), false)
			return err
		}
		select {
		case <-ctx.Done():
		case volumes = <-a.DownRequested():
		}
	case <-ctx.Done():
	case volumes = <-a.DownRequested():
	}
	cancelUp()
	// Stop with a fresh context: the signal that ended ctx asks for a
	// graceful stop, not an abandoned one.
	return a.Down(context.Background(), volumes)
}
