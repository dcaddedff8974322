package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/dash"
	"github.com/msctl/msctl/internal/state"
)

type dashOptions struct {
	root    *rootOptions
	refresh time.Duration
}

func newDashCmd(root *rootOptions) *cobra.Command {
	o := &dashOptions{root: root}
	cmd := command("dash", "Interactive dashboard: services, registry, traces, breakers, logs, events", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return o.run(ctx) })
	cmd.Long = "dash shows the running workspace: services and their health, registry instances, recent traces\n" +
		"with a waterfall of each, circuit breakers, logs and broker events. Press ? for the keys.\n" +
		"It waits for the workspace when nothing is up and reconnects when the agent comes back."
	cmd.Flags().DurationVar(&o.refresh, "refresh", 500*time.Millisecond, "how often to poll the agent (250ms to 10s)")
	return cmd
}

func (o *dashOptions) run(ctx context.Context) error {
	if o.refresh < 250*time.Millisecond || o.refresh > 10*time.Second {
		return usageError(fmt.Errorf("--refresh %s is out of range: use 250ms to 10s", o.refresh))
	}
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	dir := m.Dir()
	src := dash.Redial(func(context.Context) (dash.Source, error) {
		c, err := o.root.connect(dir)
		if errors.Is(err, agent.ErrNotRunning) {
			return nil, fmt.Errorf("%w: %w", dash.ErrNoWorkspace, err)
		}
		if err != nil {
			return nil, err
		}
		return agentSource{c}, nil
	})
	return dash.Run(ctx, src, dash.Options{Workspace: dir, Interval: o.refresh})
}

// agentSource adapts the agent client to what the dashboard reads.
type agentSource struct{ *agent.Client }

var _ dash.Source = agentSource{}

func (s agentSource) FollowLogs(ctx context.Context, since time.Duration, fn func(state.LogLine) error) error {
	return s.Logs(ctx, state.LogQuery{Since: state.Ago(since), Follow: true}, fn)
}
