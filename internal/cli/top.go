package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/dash/panels"
	"github.com/msctl/msctl/internal/state"
)

// topEvery is how often top --watch redraws: the services export every 2 s.
const topEvery = 2 * time.Second

type topOptions struct {
	root    *rootOptions
	json    bool
	watch   bool
	service string
}

func newTopCmd(root *rootOptions) *cobra.Command {
	o := &topOptions{root: root}
	cmd := command("top", "Show requests per second, error %, p50 and p99 per route, per service called and per consumer (with its lag)", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return o.run(ctx) })
	cmd.Flags().BoolVar(&o.json, "json", false, "print the figures and their series as JSON")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "redraw every 2 s until Ctrl-C")
	cmd.Flags().StringVarP(&o.service, "service", "s", "", "only this service's rows")
	cmd.MarkFlagsMutuallyExclusive("json", "watch")
	return cmd
}

func (o *topOptions) run(ctx context.Context) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	if o.service != "" {
		if err := checkServices(m, []string{o.service}); err != nil {
			return err
		}
	}
	c, err := o.root.connect(m.Dir())
	if err != nil {
		return err
	}
	if !o.watch {
		mt, err := c.Metrics(ctx, o.service)
		if err != nil {
			return err
		}
		if o.json {
			return writeJSON(o.root.stdout, mt)
		}
		if len(mt.Rows) == 0 {
			fmt.Fprintln(o.root.stderr, noMetrics)
			return nil
		}
		return writeTop(o.root.stdout, mt)
	}
	// On a terminal each frame replaces the last; elsewhere (a pipe, a
	// file) frames follow each other.
	clear := "\n"
	if f, ok := o.root.stdout.(*os.File); ok && isTerminal(f) {
		clear = "\x1b[H\x1b[2J"
	}
	t := time.NewTicker(topEvery)
	defer t.Stop()
	for {
		mt, err := c.Metrics(ctx, o.service)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var frame bytes.Buffer
		frame.WriteString(clear)
		fmt.Fprintf(&frame, "%s · last %s · Ctrl-C to stop\n", mt.TakenAt.Local().Format(time.TimeOnly), time.Duration(mt.WindowMS)*time.Millisecond)
		if len(mt.Rows) == 0 {
			fmt.Fprintln(&frame, noMetrics)
		} else if err := writeTop(&frame, mt); err != nil {
			return err
		}
		// One write per frame, so a terminal never shows half of one.
		if _, err := o.root.stdout.Write(frame.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// noMetrics says why top has no rows.
const noMetrics = "no metrics yet: services export them every 2 s once they serve requests, call others or consume messages"

// writeTop prints the table, one row per route, edge and consumer; figures
// over the metrics' window, "-" where nothing was measured.
func writeTop(w io.Writer, mt state.Metrics) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tKIND\tNAME\tRPS\tERR%\tP50\tP99\tLAG")
	for _, r := range mt.Rows {
		rps, errPct, p50, p99, lag := "-", "-", "-", "-", "-"
		if r.Requests > 0 {
			rps, errPct = strconv.FormatFloat(r.RPS, 'f', 1, 64), strconv.FormatFloat(r.ErrorPct, 'f', 1, 64)
			p50, p99 = panels.DurMS(r.P50MS), panels.DurMS(r.P99MS)
		}
		if r.Lag != nil {
			lag = strconv.FormatInt(*r.Lag, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Service, r.Kind, r.Label(), rps, errPct, p50, p99, lag)
	}
	return tw.Flush()
}
