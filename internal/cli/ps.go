package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/state"
)

type psOptions struct {
	root *rootOptions
	json bool
}

func newPsCmd(root *rootOptions) *cobra.Command {
	o := &psOptions{root: root}
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the services and infra of this workspace: state, health, endpoint, restarts",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the components as a JSON array")
	return cmd
}

func (o *psOptions) run(ctx context.Context) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	var comps []state.Component
	c, err := agent.Connect(m.Dir())
	switch {
	case errors.Is(err, agent.ErrNotRunning):
		// A killed agent's containers run on: Docker still knows them.
		if dc, derr := docker.ListContainers(ctx, m.Project); derr == nil && len(dc) > 0 {
			comps = dc
			break
		}
		if !o.json {
			fmt.Fprintln(o.root.stderr, agent.ErrNotRunning)
			return nil
		}
	case err != nil:
		return err
	default:
		s, err := c.Snapshot(ctx)
		if err != nil {
			return err
		}
		comps = s.Components
	}
	if o.json {
		if comps == nil {
			comps = []state.Component{}
		}
		enc := json.NewEncoder(o.root.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(comps)
	}
	tw := tabwriter.NewWriter(o.root.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tHEALTH\tENDPOINT\tPID\tRESTARTS\tUPTIME")
	for _, c := range comps {
		pid, uptime := "-", "-"
		if c.PID != 0 {
			pid = strconv.Itoa(c.PID)
		}
		if !c.StartedAt.IsZero() && c.State != state.StateStopped {
			uptime = time.Since(c.StartedAt).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", c.Name, c.Kind, c.State, firstLine(c.Health), c.Endpoint, pid, c.Restarts, uptime)
	}
	return tw.Flush()
}
