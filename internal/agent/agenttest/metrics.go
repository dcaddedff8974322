package agenttest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// Load is what a test sent through one row of the agent's metrics (see
// MetricsReflectLoad).
type Load struct {
	Service string
	Kind    state.MetricKind
	// Name is the route ("POST /api/v1/orders"), the peer service, or the
	// consumer's durable name.
	Name string
	// Requests is how many requests (calls, messages) the test sent at
	// least; the services' own probes and retries may add more.
	Requests uint64
	// The share of them that failed, in percent, within these bounds.
	MinErrorPct, MaxErrorPct float64
	// Lag asks for a consumer's lag to be reported.
	Lag bool
}

// metricsWait is how long the counts may take to arrive: the services
// export every 2 s, the kubernetes runtime relays every second.
var metricsWait = 20 * time.Second

// Metrics is the agent's metrics of the workspace in dir.
func Metrics(t testing.TB, dir string) state.Metrics {
	t.Helper()
	m, err := metrics(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func metrics(t testing.TB, dir string) (state.Metrics, error) {
	c, err := agent.Connect(dir)
	if err != nil {
		return state.Metrics{}, err
	}
	return c.Metrics(t.Context(), "")
}

// MetricsReflectLoad checks, after a test sent loads through the workspace
// in dir, that the services' metrics reached its agent and count them: each
// load's row grew by at least its requests since before (Metrics taken
// before the load), the failed share of the growth within its bounds, the
// durations measured (0 < p50 ≤ p99), a consumer's lag reported.
func MetricsReflectLoad(t testing.TB, dir string, before state.Metrics, loads ...Load) {
	t.Helper()
	testenv.Eventually(t, metricsWait, "the metrics reflect the load", func() error {
		now, err := metrics(t, dir)
		if err != nil {
			return err
		}
		for _, l := range loads {
			if err := l.check(row(before, l), row(now, l)); err != nil {
				return err
			}
		}
		return nil
	})
}

func row(m state.Metrics, l Load) state.MetricRow {
	i := slices.IndexFunc(m.Rows, func(r state.MetricRow) bool {
		return r.Service == l.Service && r.Kind == l.Kind && r.Name == l.Name
	})
	if i < 0 {
		return state.MetricRow{}
	}
	return m.Rows[i]
}

func (l Load) check(before, now state.MetricRow) error {
	what := fmt.Sprintf("%s %s %s", l.Service, l.Kind, l.Name)
	n, errs := now.Total-before.Total, now.TotalErrors-before.TotalErrors
	if n < l.Requests {
		return fmt.Errorf("%s: %d requests counted, want at least %d", what, n, l.Requests)
	}
	if n > 0 {
		if pct := 100 * float64(errs) / float64(n); pct < l.MinErrorPct || pct > l.MaxErrorPct {
			return fmt.Errorf("%s: %.1f%% of %d failed, want %.1f%% to %.1f%%", what, pct, n, l.MinErrorPct, l.MaxErrorPct)
		}
		// The load may have left the window already: its p99 is in the series.
		if slices.Max(now.P99Series) <= 0 || now.Requests > 0 && (now.P50MS <= 0 || now.P50MS > now.P99MS) {
			return fmt.Errorf("%s: p50 %.2f ms, p99 %.2f ms, p99 series up to %.2f ms; want durations measured", what, now.P50MS, now.P99MS, slices.Max(now.P99Series))
		}
	}
	if l.Lag && now.Lag == nil {
		return fmt.Errorf("%s: no consumer lag reported", what)
	}
	return nil
}

// OrderLoads is what n orders placed through the shop's gateway (and
// settled, whatever the outcome) put on its metrics at least: n posts on the
// gateway's order route and n calls on its edge to orders, all answered
// without a server error, and n charge commands handled by payments'
// consumer, which reports its lag.
func OrderLoads(n uint64) []Load {
	return []Load{
		{Service: "gateway", Kind: state.MetricRoute, Name: "POST /api/v1/orders", Requests: n},
		{Service: "gateway", Kind: state.MetricEdge, Name: "orders", Requests: n},
		{Service: "payments", Kind: state.MetricConsumer, Name: "payments", Requests: n, Lag: true},
	}
}
