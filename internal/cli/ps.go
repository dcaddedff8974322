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
	"github.com/msctl/msctl/internal/runtime/local"
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
		// So do its local processes: saying nothing is up while they hold
		// ports and data would send the user chasing ghosts.
		orphans, oerr := local.Orphans(agent.StateDir(m.Dir()))
		if oerr != nil {
			return oerr
		}
		if len(orphans) > 0 {
			comps = orphanComponents(orphans)
			fmt.Fprintf(o.root.stderr, "no agent runs this workspace, but %d processes it started still do: msctl up reaps them; msctl down stops them\n", len(orphans))
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

// stateOrphaned is the state ps gives a process left running by an agent
// that died without stopping it.
const stateOrphaned = "orphaned"

// orphanComponents describes orphaned local processes as components; nothing
// probes them any more, so their health is unknown.
func orphanComponents(orphans []local.Orphan) []state.Component {
	comps := make([]state.Component, len(orphans))
	for i, o := range orphans {
		kind := state.KindService
		if o.Instance == "" {
			kind = state.KindInfra
		}
		comps[i] = state.Component{Name: o.Name, Kind: kind, State: stateOrphaned, Health: "unknown", Endpoint: o.Endpoint, PID: o.PID, Instances: 1}
	}
	return comps
}
