package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/tracestore"
)

// tracesOptions holds the flags of traces and traces show.
type tracesOptions struct {
	root    *rootOptions
	json    bool
	service string
	since   time.Duration
	limit   int
}

func newTracesCmd(root *rootOptions) *cobra.Command {
	o := &tracesOptions{root: root}
	cmd := command("traces", "List the traces the agent received, newest first: id, root span, services, start, duration, spans, errors", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return o.runList(ctx) })
	cmd.Long = "traces lists what the services traced, from the agent while it runs and from the trace store it\n" +
		"keeps in .msctl/ when it does not (traces outlive the agent, down and up; observability.traces in\n" +
		"msctl.yaml bounds the store by size and age). msctl traces show ID prints one as a waterfall."
	cmd.Flags().StringVar(&o.service, "service", "", "only traces with a span of this service")
	cmd.Flags().DurationVar(&o.since, "since", 0, "only traces that started this long ago at most, e.g. 10m")
	cmd.Flags().IntVar(&o.limit, "limit", 50, "list at most this many traces (0: all)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the traces as a JSON array")

	show := &tracesOptions{root: root}
	showCmd := command("show ID", "Print one trace as a waterfall: spans under their parents, offset and duration bars, service, status", cobra.ExactArgs(1),
		func(ctx context.Context, args []string) error { return show.runShow(ctx, args[0]) })
	showCmd.Flags().BoolVar(&show.json, "json", false, "print the trace's spans as a JSON array")
	cmd.AddCommand(showCmd)
	return cmd
}

// traceReader is where traces are read: the agent, or its store on disk
// when no agent runs.
type traceReader struct {
	agent *agent.Client
	store *tracestore.Store // nil with an agent, or when nothing was ever stored
}

func (o *tracesOptions) reader() (traceReader, error) {
	m, err := loadManifest(o.root)
	if err != nil {
		return traceReader{}, err
	}
	c, err := o.root.connect(m.Dir())
	switch {
	case err == nil:
		return traceReader{agent: c}, nil
	case !errors.Is(err, agent.ErrNotRunning):
		return traceReader{}, err
	}
	s, err := tracestore.OpenReadOnly(filepath.Join(agent.StateDir(m.Dir()), tracestore.FileName))
	return traceReader{store: s}, err
}

func (r traceReader) close() {
	if r.store != nil {
		r.store.Close()
	}
}

func (r traceReader) list(ctx context.Context, o *tracesOptions) ([]state.TraceSummary, error) {
	if r.agent != nil {
		return r.agent.Traces(ctx, o.service, o.since, o.limit)
	}
	if r.store == nil {
		return nil, nil
	}
	q := tracestore.Query{Service: o.service, Limit: o.limit}
	if o.since > 0 {
		q.Since = time.Now().Add(-o.since)
	}
	return r.store.List(q)
}

func (r traceReader) trace(ctx context.Context, id string) ([]state.Span, error) {
	if r.agent != nil {
		return r.agent.Trace(ctx, id)
	}
	if r.store == nil {
		return nil, fmt.Errorf("no trace %s: nothing was traced in this workspace yet", id)
	}
	spans, err := r.store.Trace(id)
	if errors.Is(err, tracestore.ErrNotFound) {
		return nil, fmt.Errorf("no trace %s (msctl traces lists them)", id)
	}
	return spans, err
}

func (o *tracesOptions) runList(ctx context.Context) error {
	if o.limit < 0 {
		return usageError(fmt.Errorf("--limit %d: give a count, or 0 for all", o.limit))
	}
	r, err := o.reader()
	if err != nil {
		return err
	}
	defer r.close()
	list, err := r.list(ctx, o)
	if err != nil {
		return err
	}
	if o.json {
		return writeListJSON(o.root.stdout, list)
	}
	if r.agent != nil {
		o.printExport(ctx, r.agent)
	}
	if len(list) == 0 {
		fmt.Fprintln(o.root.stderr, "no traces"+o.selection())
		return nil
	}
	tw := tabwriter.NewWriter(o.root.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRACE\tROOT\tSERVICES\tSTART\tDURATION\tSPANS\tERRORS")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", t.TraceID, t.Root, strings.Join(t.Services, ","), when(t.Start), span(t.Duration), t.Spans, t.Errors)
	}
	return tw.Flush()
}

// printExport says how forwarding to an external OTLP endpoint fares: the
// list of traces is where one looks whether they reach Jaeger or Tempo too.
func (o *tracesOptions) printExport(ctx context.Context, c *agent.Client) {
	s, err := c.Snapshot(ctx)
	if err != nil || s.Export == nil {
		return
	}
	e := s.Export
	line := fmt.Sprintf("forwarding to %s: %d sent, %d dropped, %d queued", e.URL, e.Sent, e.Dropped, e.Queued)
	if e.LastError != "" {
		line += "; last error " + e.LastError
	}
	fmt.Fprintln(o.root.stderr, line)
}

func (o *tracesOptions) selection() string {
	var s string
	if o.service != "" {
		s += " of " + o.service
	}
	if o.since > 0 {
		s += " in the last " + o.since.String()
	}
	return s
}

func (o *tracesOptions) runShow(ctx context.Context, id string) error {
	r, err := o.reader()
	if err != nil {
		return err
	}
	defer r.close()
	spans, err := r.trace(ctx, id)
	if err != nil {
		return err
	}
	if o.json {
		return writeListJSON(o.root.stdout, spans)
	}
	return waterfall(o.root.stdout, id, spans)
}

// barWidth is the width of the waterfall's timeline column.
const barWidth = 40

// waterfall prints spans as a tree under their parents, in start order,
// with each span's offset from the trace's start and its duration as a bar.
func waterfall(w io.Writer, id string, spans []state.Span) error {
	sum := tracestore.Summarize(id, spans)
	fmt.Fprintf(w, "trace %s  %s  %s, %d %s, %d %s, started %s\n\n", id, sum.Root, span(sum.Duration),
		sum.Spans, plural(sum.Spans, "span", "spans"), sum.Errors, plural(sum.Errors, "error", "errors"), when(sum.Start))
	ids := map[string]bool{}
	children := map[string][]state.Span{}
	for _, sp := range spans {
		ids[sp.SpanID] = true
	}
	var roots []state.Span
	for _, sp := range spans { // spans come ordered by start
		if sp.ParentID == "" || !ids[sp.ParentID] {
			roots = append(roots, sp)
		} else {
			children[sp.ParentID] = append(children[sp.ParentID], sp)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SPAN\tSERVICE\tSTATUS\tOFFSET\tDURATION\tTIMELINE")
	var walk func(sp state.Span, depth int)
	walk = func(sp state.Span, depth int) {
		status := "ok"
		if sp.Error {
			status = "error"
		}
		off := sp.Start.Sub(sum.Start)
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t|%s|\n", strings.Repeat("  ", depth), sp.Name, sp.Service, status, span(off), span(sp.Duration), bar(off, sp.Duration, sum.Duration))
		for _, c := range children[sp.SpanID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return tw.Flush()
}

// bar draws a span from off lasting d on a timeline of total, at least one
// cell wide so that short spans still show.
func bar(off, d, total time.Duration) string {
	if total <= 0 {
		total = 1
	}
	from := min(int(int64(barWidth)*int64(off)/int64(total)), barWidth-1)
	to := max(min(int((int64(barWidth)*int64(off+d)+int64(total)-1)/int64(total)), barWidth), from+1)
	return strings.Repeat(" ", from) + strings.Repeat("█", to-from) + strings.Repeat(" ", barWidth-to)
}

// span prints a duration to a precision that fits its size.
func span(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// when prints a start time: the time of day today, the date too before.
func when(t time.Time) string {
	t = t.Local()
	if t.Format(time.DateOnly) == time.Now().Format(time.DateOnly) {
		return t.Format("15:04:05.000")
	}
	return t.Format(time.DateTime)
}
