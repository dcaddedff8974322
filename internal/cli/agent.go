package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
)

type agentOptions struct {
	root        *rootOptions
	runtime     string
	kubeContext string
	env         string
	otlpExport  otlpExportFlag
}

// newAgentCmd is the detached agent `msctl up -d` starts in a new session.
// It is hidden: users run up -d, not this.
func newAgentCmd(root *rootOptions) *cobra.Command {
	o := &agentOptions{root: root}
	cmd := command("agent [service...]", "Run the workspace's agent (started by up -d)", cobra.ArbitraryArgs, o.run)
	cmd.Hidden = true
	cmd.Flags().StringVar(&o.runtime, "runtime", "local", "runtime to use")
	cmd.Flags().StringVar(&o.kubeContext, "context", "", "kubeconfig context of the kubernetes runtime")
	addEnvFlag(cmd, &o.env)
	o.otlpExport.add(cmd)
	cmd.AddCommand(newCollectCmd(), newChaosProxyCmd())
	return cmd
}

// holdFailure is how long an agent whose start failed waits for up -d to
// read the failure before it stops: up -d polls ten times a second.
const holdFailure = 10 * time.Second

func (o *agentOptions) run(ctx context.Context, services []string) error {
	m, err := loadManifestEnv(o.root, o.env)
	if err != nil {
		return err
	}
	if o.kubeContext != "" {
		m.Kubernetes.Context = o.kubeContext
	}
	if err := o.otlpExport.apply(m); err != nil {
		return err
	}
	rtName, err := resolveRuntime(ctx, o.runtime, m)
	if err != nil {
		return err
	}
	a, closeLogs, err := o.root.startAgent(m, o.env, rtName, o.root.stderr)
	if err != nil {
		if errors.Is(err, agent.ErrAlreadyRunning) {
			return nil
		}
		return err
	}
	defer closeLogs()
	up := false
	err = a.Run(ctx, agent.RunOptions{
		Services:    services,
		Ready:       func(state.Snapshot) { up = true },
		HoldFailure: holdFailure,
	})
	if err != nil && !up && ctx.Err() == nil {
		fmt.Fprintf(o.root.stderr, "msctl agent: up failed: %v\n", err)
	}
	return err
}
