package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/runtime/docker"
	"github.com/msctl/msctl/internal/state"
)

type logsOptions struct {
	root   *rootOptions
	follow bool
	grep   string
	since  time.Duration
}

func newLogsCmd(root *rootOptions) *cobra.Command {
	o := &logsOptions{root: root}
	cmd := &cobra.Command{
		Use:   "logs [service...]",
		Short: "Show the merged, prefixed logs of the services",
		RunE:  func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), args) },
	}
	// -f is --follow here, as in tail and docker logs: the global --file has no shorthand.
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVar(&o.grep, "grep", "", "only lines matching this regular expression")
	cmd.Flags().DurationVar(&o.since, "since", 0, "only lines of the last DURATION, e.g. 5m")
	return cmd
}

func (o *logsOptions) run(ctx context.Context, services []string) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	q := state.LogQuery{Services: services, Since: state.Ago(o.since), Follow: o.follow}
	if o.grep != "" {
		if q.Grep, err = regexp.Compile(o.grep); err != nil {
			return usageError(fmt.Errorf("--grep: %w", err))
		}
	}
	for _, s := range services {
		if _, ok := m.Services[s]; !ok {
			return usageError(fmt.Errorf("unknown service %q (services: %s)", s, strings.Join(m.ServiceNames(), ", ")))
		}
	}
	width := 0
	for _, n := range m.ServiceNames() {
		width = max(width, len(n))
	}
	c, err := agent.Connect(m.Dir())
	if errors.Is(err, agent.ErrNotRunning) {
		// A killed agent's containers run on: Docker still has their output.
		// Without any, say that nothing is up rather than print nothing.
		if dc, derr := docker.ListContainers(ctx, m.Project); derr != nil || len(dc) == 0 {
			return err
		}
		err = docker.Logs(ctx, m.Project, docker.LogsOptions{Services: services, Since: q.Since, Follow: o.follow}, func(l state.LogLine) {
			if q.Match(l) {
				fmt.Fprintf(o.root.stdout, "%-*s | %s\n", width, l.Service, l.Text)
			}
		})
		if ctx.Err() != nil && o.follow {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	err = c.Logs(ctx, q, func(l state.LogLine) error {
		_, err := fmt.Fprintf(o.root.stdout, "%-*s | %s\n", width, l.Service, l.Text)
		return err
	})
	if ctx.Err() != nil && o.follow {
		// Ctrl-C is how one leaves -f: not a failure.
		return nil
	}
	return err
}
