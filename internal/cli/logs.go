package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/logview"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/state"
)

type logsOptions struct {
	root   *rootOptions
	follow bool
	grep   string
	since  time.Duration
	json   bool
	view   logViewFlags
}

func newLogsCmd(root *rootOptions) *cobra.Command {
	o := &logsOptions{root: root}
	cmd := command("logs [service...]", "Show the merged, prefixed logs of the services", cobra.ArbitraryArgs, o.run)
	// -f is --follow here, as in tail and docker logs: the global --file has no shorthand.
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVar(&o.grep, "grep", "", "only lines matching this regular expression")
	cmd.Flags().DurationVar(&o.since, "since", 0, "only lines of the last DURATION, e.g. 5m")
	cmd.Flags().BoolVar(&o.json, "json", false, "print each line as a JSON object {time, service, stream, level, text}")
	o.view.add(cmd)
	cmd.MarkFlagsMutuallyExclusive("json", "raw")
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
	p, err := o.view.printer(o.root.stdout, m)
	if err != nil {
		return err
	}
	c, left, err := o.root.reach(m)
	if err != nil {
		return err
	}
	emit := p.Print
	if o.json {
		enc := json.NewEncoder(o.root.stdout)
		emit = func(l state.LogLine) error {
			if p.Hides(l) {
				return nil
			}
			return enc.Encode(l)
		}
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

// logViewFlags are --raw and --level, shared by logs and the foreground up:
// the one way log lines are shown (internal/logview).
type logViewFlags struct {
	raw   bool
	level string
}

func (f *logViewFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.raw, "raw", false, "print each line exactly as the service wrote it (JSON for the bundled services)")
	cmd.Flags().StringVar(&f.level, "level", "", "only lines at LEVEL or above: debug, info, warn or error (lines that are not JSON count as info)")
}

// printer checks --level and returns the printer of the workspace's logs,
// the service column as wide as its longest service name.
func (f *logViewFlags) printer(w io.Writer, m *manifest.Manifest) (*logview.Printer, error) {
	lowest, err := logview.ParseLevel(f.level)
	if err != nil {
		return nil, usageError(fmt.Errorf("--level: %w", err))
	}
	width := 0
	for _, n := range m.ServiceNames() {
		width = max(width, len(n))
	}
	return logview.New(w, logview.Options{Raw: f.raw, MinLevel: lowest, Width: width}), nil
}
