package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
)

type psOptions struct {
	root *rootOptions
	json bool
}

func newPsCmd(root *rootOptions) *cobra.Command {
	o := &psOptions{root: root}
	cmd := command("ps", "List the services and infra of this workspace: state, health, endpoint, restarts", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return o.run(ctx) })
	cmd.Flags().BoolVar(&o.json, "json", false, "print the components as a JSON array")
	return cmd
}

func (o *psOptions) run(ctx context.Context) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	c, left, err := o.root.reach(m)
	if err != nil {
		return err
	}
	var comps []state.Component
	if c != nil {
		s, err := c.Snapshot(ctx)
		if err != nil {
			return err
		}
		comps = s.Components
	} else {
		var orphans int
		if comps, orphans, err = left.components(ctx); err != nil {
			return err
		}
		if orphans > 0 {
			fmt.Fprintf(o.root.stderr, "no agent runs this workspace, but %d processes it started still do: msctl up reaps them; msctl down stops them\n", orphans)
		}
		if len(comps) == 0 && !o.json {
			fmt.Fprintln(o.root.stderr, agent.ErrNotRunning)
			return nil
		}
	}
	if o.json {
		if comps == nil {
			comps = []state.Component{}
		}
		return writeJSON(o.root.stdout, comps)
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
