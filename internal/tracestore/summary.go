package tracestore

import (
	"slices"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// Summarize describes one trace from its spans: root, services, start,
// duration, span and error counts.
func Summarize(id string, spans []state.Span) state.TraceSummary {
	sum := state.TraceSummary{TraceID: id, Spans: len(spans)}
	var end time.Time
	var root *state.Span
	seen := map[string]bool{}
	ids := map[string]bool{}
	for i := range spans {
		ids[spans[i].SpanID] = true
	}
	for i := range spans {
		sp := &spans[i]
		if sum.Start.IsZero() || sp.Start.Before(sum.Start) {
			sum.Start = sp.Start
		}
		if e := sp.Start.Add(sp.Duration); e.After(end) {
			end = e
		}
		if sp.Error {
			sum.Errors++
		}
		if !seen[sp.Service] {
			seen[sp.Service] = true
			sum.Services = append(sum.Services, sp.Service)
		}
		// The root has no parent; until it arrives, the earliest span whose
		// parent we have not seen stands in.
		if rootRank(sp, ids) < rootRank(root, ids) || root != nil && rootRank(sp, ids) == rootRank(root, ids) && sp.Start.Before(root.Start) {
			root = sp
		}
	}
	slices.Sort(sum.Services)
	if root != nil {
		sum.Root = root.Service + ": " + root.Name
	}
	sum.Duration = end.Sub(sum.Start)
	return sum
}

// rootRank orders root candidates: a span without parent first, then one
// whose parent is missing, then the rest; nil last.
func rootRank(sp *state.Span, ids map[string]bool) int {
	switch {
	case sp == nil:
		return 3
	case sp.ParentID == "":
		return 0
	case !ids[sp.ParentID]:
		return 1
	default:
		return 2
	}
}
