package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/state"
)

type logsOptions struct {
	root   *rootOptions
	follow bool
	grep   string
	since  time.Duration
	json   bool
}

func newLogsCmd(root *rootOptions) *cobra.Command {
	o := &logsOptions{root: root}
	cmd := command("logs [service...]", "Show the merged, prefixed logs of the services", cobra.ArbitraryArgs, o.run)
	// -f is --follow here, as in tail and docker logs: the global --file has no shorthand.
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVar(&o.grep, "grep", "", "only lines matching this regular expression")
	cmd.Flags().DurationVar(&o.since, "since", 0, "only lines of the last DURATION, e.g. 5m")
	cmd.Flags().BoolVar(&o.json, "json", false, "print each line as a JSON object {time, service, stream, level, text}")
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
	if err := checkServices(m, services); err != nil {
		return err
	}
	c, left, err := o.root.reach(m)
	if err != nil {
		return err
	}
	emit := newLogPrinter(o.root.stdout, m).print
	if o.json {
		enc := json.NewEncoder(o.root.stdout)
		emit = func(l state.LogLine) error { return enc.Encode(l) }
	}
	if c != nil {
		err = c.Logs(ctx, q, emit)
	} else {
		err = left.logs(ctx, q, emit)
	}
	if ctx.Err() != nil && o.follow {
		// Ctrl-C is how one leaves -f: not a failure.
		return nil
	}
	return err
}

// logPrinter writes log lines prefixed with their service, the prefixes
// aligned to the workspace's longest service name: the one format of logs
// and of the foreground up.
type logPrinter struct {
	w     io.Writer
	width int
}

func newLogPrinter(w io.Writer, m *manifest.Manifest) logPrinter {
	p := logPrinter{w: w}
	for _, n := range m.ServiceNames() {
		p.width = max(p.width, len(n))
	}
	return p
}

func (p logPrinter) print(l state.LogLine) error {
	_, err := fmt.Fprintf(p.w, "%-*s | %s\n", p.width, l.Service, l.Text)
	return err
}
