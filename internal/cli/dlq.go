package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
)

// dlqOptions holds the flags of the dlq commands; each uses those it has.
type dlqOptions struct {
	root    *rootOptions
	json    bool
	all     bool
	subject string
}

func newDlqCmd(root *rootOptions) *cobra.Command {
	ls := &dlqOptions{root: root}
	lsCmd := command("ls", "List the parked messages: id, subject, reason, stream, consumer, attempts, age", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return ls.runLs(ctx) })
	lsCmd.Flags().BoolVar(&ls.json, "json", false, "print the messages as a JSON array")
	lsCmd.Flags().StringVar(&ls.subject, "subject", "", "only messages first published on this subject (wildcards * and > work)")

	show := &dlqOptions{root: root}
	showCmd := command("show ID", "Show one parked message with its headers and payload", cobra.ExactArgs(1),
		func(ctx context.Context, args []string) error { return show.runShow(ctx, args[0]) })
	showCmd.Flags().BoolVar(&show.json, "json", false, "print the message as JSON")

	replay := &dlqOptions{root: root}
	replayCmd := command("replay ID...|--all", "Deliver parked messages to the consumer that gave up on them again, then remove them from the DLQ", cobra.ArbitraryArgs,
		func(ctx context.Context, args []string) error {
			return replay.runOp(ctx, args, "replay", "replayed", (*agent.Client).DLQReplay)
		})
	replay.selectionFlags(replayCmd, "replay")

	drop := &dlqOptions{root: root}
	dropCmd := command("drop ID...|--all", "Delete parked messages for good", cobra.ArbitraryArgs,
		func(ctx context.Context, args []string) error {
			return drop.runOp(ctx, args, "drop", "dropped", (*agent.Client).DLQDrop)
		})
	drop.selectionFlags(dropCmd, "drop")

	return group("dlq", "Inspect, replay and drop the messages consumers gave up on (the dead-letter queue)", lsCmd, showCmd, replayCmd, dropCmd)
}

func (o *dlqOptions) selectionFlags(cmd *cobra.Command, verb string) {
	cmd.Flags().BoolVar(&o.all, "all", false, verb+" every parked message")
	cmd.Flags().StringVar(&o.subject, "subject", "", "with --all: only messages first published on this subject (wildcards * and > work)")
}

func (o *dlqOptions) runLs(ctx context.Context) error {
	c, err := workspaceAgent(o.root)
	if err != nil {
		return err
	}
	ms, err := c.DLQ(ctx, o.subject)
	if err != nil {
		return err
	}
	if o.json {
		return writeListJSON(o.root.stdout, ms)
	}
	if len(ms) == 0 {
		fmt.Fprintln(o.root.stderr, "no parked messages"+onSubject(o.subject))
		return nil
	}
	tw := tabwriter.NewWriter(o.root.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSUBJECT\tREASON\tSTREAM\tCONSUMER\tATTEMPTS\tAGE")
	for _, m := range ms {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", m.ID, m.Subject, clip(firstLine(m.Reason), 60), m.Stream, m.Consumer, m.Attempts, age(m.ParkedAt))
	}
	return tw.Flush()
}

func (o *dlqOptions) runShow(ctx context.Context, arg string) error {
	ids, err := parseDLQIDs([]string{arg})
	if err != nil {
		return err
	}
	c, err := workspaceAgent(o.root)
	if err != nil {
		return err
	}
	m, err := c.DLQMessage(ctx, ids[0])
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(o.root.stdout, m)
	}
	w := o.root.stdout
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%d\n", m.ID)
	fmt.Fprintf(tw, "subject\t%s\n", m.Subject)
	fmt.Fprintf(tw, "reason\t%s\n", m.Reason)
	fmt.Fprintf(tw, "stream\t%s (seq %d)\n", m.Stream, m.StreamSeq)
	fmt.Fprintf(tw, "consumer\t%s\n", m.Consumer)
	fmt.Fprintf(tw, "attempts\t%d\n", m.Attempts)
	fmt.Fprintf(tw, "parked\t%s (%s ago)\n", m.ParkedAt.Local().Format(time.DateTime), age(m.ParkedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "headers:")
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		for _, v := range m.Headers[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w, "payload:")
	var pretty bytes.Buffer
	if json.Indent(&pretty, []byte(m.Payload), "", "  ") == nil {
		fmt.Fprintln(w, pretty.String())
	} else {
		// A poison message may not be JSON at all: shown as it came.
		fmt.Fprintln(w, strconv.Quote(m.Payload))
	}
	return nil
}

// runOp replays or drops the messages named by args or --all.
func (o *dlqOptions) runOp(ctx context.Context, args []string, verb, done string, op func(*agent.Client, context.Context, agent.DLQSelection) (state.DLQOutcome, error)) error {
	sel, err := o.selection(args, verb)
	if err != nil {
		return err
	}
	c, err := workspaceAgent(o.root)
	if err != nil {
		return err
	}
	out, err := op(c, ctx, sel)
	if err != nil {
		return err
	}
	for _, f := range out.Failed {
		fmt.Fprintf(o.root.stderr, "%s %d: %s\n", verb, f.ID, f.Error)
	}
	switch {
	case len(out.Done) == 0 && len(out.Failed) == 0:
		fmt.Fprintln(o.root.stderr, "no parked messages"+onSubject(sel.Subject))
	case len(out.Done) > 0:
		fmt.Fprintf(o.root.stderr, "%s %d %s: %s\n", done, len(out.Done), plural(len(out.Done), "message", "messages"), joinIDs(out.Done))
	}
	if n := len(out.Failed); n > 0 {
		return fmt.Errorf("%d of %d %s not %s", n, n+len(out.Done), plural(n+len(out.Done), "message", "messages"), done)
	}
	return nil
}

// selection checks the ids and flags of replay and drop before anything
// is asked of the agent, so a wrong invocation names its fix.
func (o *dlqOptions) selection(args []string, verb string) (agent.DLQSelection, error) {
	switch {
	case o.all && len(args) > 0:
		return agent.DLQSelection{}, usageError(errors.New("give message ids or --all, not both"))
	case !o.all && len(args) == 0:
		return agent.DLQSelection{}, usageError(fmt.Errorf("name the messages to %s: their ids (msctl dlq ls) or --all", verb))
	case !o.all && o.subject != "":
		return agent.DLQSelection{}, usageError(fmt.Errorf("--subject narrows --all: use msctl dlq %s --all --subject %s", verb, o.subject))
	}
	ids, err := parseDLQIDs(args)
	if err != nil {
		return agent.DLQSelection{}, err
	}
	return agent.DLQSelection{IDs: ids, All: o.all, Subject: o.subject}, nil
}

func parseDLQIDs(args []string) ([]uint64, error) {
	ids := make([]uint64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil || id == 0 {
			return nil, usageError(fmt.Errorf("bad message id %q: ids are the numbers in the ID column of msctl dlq ls", a))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func onSubject(subject string) string {
	if subject == "" {
		return ""
	}
	return " on " + subject
}

func joinIDs(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}
