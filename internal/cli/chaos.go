package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/chaos"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/state"
)

// chaosOptions holds the flags of the chaos commands; each uses those it has.
type chaosOptions struct {
	root      *rootOptions
	json      bool
	latency   time.Duration
	jitter    time.Duration
	errorRate float64
	down      bool
	bandwidth string
	lasts     time.Duration
}

func newChaosCmd(root *rootOptions) *cobra.Command {
	add := &chaosOptions{root: root}
	addCmd := command("add FROM->TO", "Inject a fault on an edge: a service and a service, nats, etcd or postgres it dials", cobra.ExactArgs(1),
		func(ctx context.Context, args []string) error { return add.runAdd(ctx, args[0]) })
	f := addCmd.Flags()
	f.DurationVar(&add.latency, "latency", 0, "delay every answer on the edge by this much, e.g. 300ms")
	f.DurationVar(&add.jitter, "jitter", 0, "with --latency: vary the delay by up to this much, e.g. 50ms")
	f.Float64Var(&add.errorRate, "error-rate", 0, "share (0..1) of requests whose connection is closed, e.g. 0.5")
	f.BoolVar(&add.down, "down", false, "refuse new connections and cut the open ones")
	f.StringVar(&add.bandwidth, "bandwidth", "", "limit both directions to this rate, e.g. 64KB (per second; KB or MB)")
	f.DurationVar(&add.lasts, "for", 0, "remove the fault after this long, e.g. 30s (default: until chaos rm, chaos clear or down)")
	f.BoolVar(&add.json, "json", false, "print the fault as JSON")

	ls := &chaosOptions{root: root}
	lsCmd := command("ls", "List the active faults: id, edge, what they do, when they expire", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return ls.runLs(ctx) })
	lsCmd.Flags().BoolVar(&ls.json, "json", false, "print the faults as a JSON array")

	rm := &chaosOptions{root: root}
	rmCmd := command("rm ID...", "Remove faults by id (msctl chaos ls)", cobra.MinimumNArgs(1),
		func(ctx context.Context, args []string) error { return rm.runRm(ctx, args) })

	clear := &chaosOptions{root: root}
	clearCmd := command("clear", "Remove every fault", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return clear.runClear(ctx) })

	return group("chaos", "Inject faults on the edges between services and infra while the workspace runs", addCmd, lsCmd, rmCmd, clearCmd)
}

func (o *chaosOptions) runAdd(ctx context.Context, edge string) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	spec, err := o.spec(m, edge)
	if err != nil {
		return err
	}
	c, err := o.root.connect(m.Dir())
	if err != nil {
		return err
	}
	fault, err := c.AddFault(ctx, state.FaultRequest{FaultSpec: spec, ForMS: o.lasts.Milliseconds()})
	if ae, ok := errors.AsType[*agent.APIError](err); ok && ae.Status == http.StatusBadRequest {
		return usageError(err)
	}
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(o.root.stdout, fault)
	}
	fmt.Fprintf(o.root.stdout, "fault %s on %s: %s%s\n", fault.ID, fault.Edge(), fault.Describe(), expiry(fault))
	return nil
}

// spec checks the edge against the manifest and the flags, so that a
// mistake is named before the agent is asked.
func (o *chaosOptions) spec(m *manifest.Manifest, edge string) (state.FaultSpec, error) {
	var edges []string
	for _, e := range orchestrator.Edges(m) {
		edges = append(edges, chaos.Edge(e.From, e.To))
	}
	from, to, ok := strings.Cut(strings.ReplaceAll(edge, " ", ""), "->")
	if !ok || !slices.Contains(edges, chaos.Edge(from, to)) {
		return state.FaultSpec{}, usageError(fmt.Errorf("unknown edge %q; edges (FROM->TO): %s", edge, strings.Join(edges, ", ")))
	}
	if o.latency%time.Millisecond != 0 || o.jitter%time.Millisecond != 0 {
		return state.FaultSpec{}, usageError(errors.New("--latency and --jitter are whole milliseconds, e.g. 300ms"))
	}
	if o.lasts < 0 {
		return state.FaultSpec{}, usageError(errors.New("--for cannot be negative, e.g. --for 30s"))
	}
	kbps, err := parseBandwidth(o.bandwidth)
	if err != nil {
		return state.FaultSpec{}, usageError(err)
	}
	spec := state.FaultSpec{
		From: from, To: to, LatencyMS: o.latency.Milliseconds(), JitterMS: o.jitter.Milliseconds(),
		ErrorRate: o.errorRate, Down: o.down, BandwidthKBps: kbps,
	}
	return spec, usageError(chaos.Validate(spec))
}

// parseBandwidth reads a rate per second in KB (the unit toxiproxy takes):
// "64KB", "64KB/s", "2MB", or a bare number of KB.
func parseBandwidth(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "/S")
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "MB"):
		v, mult = strings.TrimSuffix(v, "MB"), 1024
	case strings.HasSuffix(v, "KB"):
		v = strings.TrimSuffix(v, "KB")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad --bandwidth %q: a positive rate per second in KB or MB, e.g. 64KB", s)
	}
	return n * mult, nil
}

func (o *chaosOptions) runLs(ctx context.Context) error {
	fs, err := askAgent(ctx, o.root, (*agent.Client).Faults)
	if err != nil {
		return err
	}
	if o.json {
		return writeListJSON(o.root.stdout, fs)
	}
	if len(fs) == 0 {
		fmt.Fprintln(o.root.stderr, "no active faults")
		return nil
	}
	tw := tabwriter.NewWriter(o.root.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEDGE\tFAULT\tAGE\tEXPIRES IN")
	for _, f := range fs {
		left := "-"
		if f.ExpiresAt != nil {
			left = max(time.Until(*f.ExpiresAt), 0).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.ID, f.Edge(), f.Describe(), age(f.CreatedAt), left)
	}
	return tw.Flush()
}

func (o *chaosOptions) runRm(ctx context.Context, ids []string) error {
	c, err := workspaceAgent(o.root)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := c.RemoveFault(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(o.root.stdout, "removed fault %s\n", id)
	}
	return nil
}

func (o *chaosOptions) runClear(ctx context.Context) error {
	n, err := askAgent(ctx, o.root, (*agent.Client).ClearFaults)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.root.stdout, "removed %d faults\n", n)
	return nil
}

func expiry(f state.Fault) string {
	if f.ExpiresAt == nil {
		return " (until chaos rm)"
	}
	return " for " + f.ExpiresAt.Sub(f.CreatedAt).Round(time.Millisecond).String()
}
