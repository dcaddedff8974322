package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

type row struct{ target, measured, threshold, ok string }

// table turns the outcomes into one row per target; bad is true when a
// benchmark failed (a missed target is a finding, not an error).
func table(results map[string]outcome, notFound map[string]bool) (rows []row, bad bool) {
	for _, t := range targets {
		r := row{target: t.name, threshold: t.info}
		if t.info == "" {
			r.threshold = t.op[:1] + " " + format(t.limit, t.unit)
			r.threshold = strings.Replace(strings.Replace(r.threshold, "< ", "≤ ", 1), "> ", "≥ ", 1)
		}
		o, ok := results[t.bench]
		if p, has := results[topLevel(t.bench)]; !ok && has && p.status != measured {
			o, ok = p, true // skipped or failed before its sub-benchmarks ran
		}
		switch {
		case notFound[topLevel(t.bench)]:
			r.measured, r.ok = "not measured ("+topLevel(t.bench)+" is in no package)", "-"
		case !ok:
			r.measured, r.ok = "not measured ("+t.bench+" did not run)", "-"
		case o.status == skipped:
			r.measured, r.ok = "not measured ("+o.reason+")", "-"
		case o.status == failed:
			r.measured, r.ok = "FAILED: "+o.reason, "FAIL"
			bad = true
		default:
			v, has := o.metrics[t.metric]
			if !has {
				r.measured, r.ok = "not measured ("+t.bench+" reports no "+t.metric+")", "-"
				break
			}
			r.measured = format(v, t.unit)
			var ctx []string
			for _, c := range t.context {
				if cv, has := o.metrics[c]; has {
					ctx = append(ctx, c+" "+short(cv))
				}
			}
			if len(ctx) > 0 {
				r.measured += " (" + strings.Join(ctx, ", ") + ")"
			}
			if t.info != "" {
				r.ok = "info"
				break
			}
			met := v <= t.limit
			if t.op == ">=" {
				met = v >= t.limit
			}
			r.ok = map[bool]string{true: "yes", false: "NO"}[met]
		}
		rows = append(rows, r)
	}
	return rows, bad
}

func format(v float64, unit string) string {
	switch unit {
	case "×":
		return strconv.FormatFloat(v, 'f', 2, 64) + "×"
	case "B":
		return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + " MiB"
	}
	prec := 1
	if v < 10 && v > -10 {
		prec = 2
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + unit
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tMEASURED\tTHRESHOLD\tOK")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.target, r.measured, r.threshold, r.ok)
	}
	tw.Flush()
}

// short prints a context figure compactly: whole above 1000, else 4 digits.
func short(v float64) string {
	if v >= 1000 || v <= -1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
