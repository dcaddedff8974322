package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/runtime/local"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// TestTracesCommand lists and shows traces the OTel SDK sent to a real
// agent, through its API while it runs and from its store once it stopped:
// both print the same.
func TestTracesCommand(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{"services/echo/.keep": ""})
	m := testenv.Manifest(t, dir, "project: tr\ngateway:\n  port: 1\nservices:\n  echo:\n    public: true\n")
	rt, err := local.New(local.Options{StateDir: agent.StateDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.Start(agent.Options{Manifest: m, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Down(context.Background(), false) })
	orders := testenv.SendTrace(t, a.Info().OTLP, "orders", "POST /api/v1/orders", "reserve", "charge")
	payments := testenv.SendTrace(t, a.Info().OTLP, "payments", "POST /internal/charge")

	msctl := func(t *testing.T, wantCode int, args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"--file", m.Path()}, args...), &stdout, &stderr, newRootCmd); code != wantCode {
			t.Fatalf("msctl %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), code, wantCode, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	check := func(t *testing.T) {
		out, _ := msctl(t, 0, "traces")
		inOrder(t, "traces", out, []string{
			"TRACE", "ROOT", "SERVICES", "START", "DURATION", "SPANS", "ERRORS\n",
			payments, "payments: POST /internal/charge", "payments", "1", "0\n",
			orders, "orders: POST /api/v1/orders", "orders", "3", "1\n",
		})

		out, _ = msctl(t, 0, "traces", "--service", "orders", "--since", "1h", "--json")
		var list []state.TraceSummary
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].TraceID != orders || list[0].Spans != 3 {
			t.Errorf("traces --service orders --json = %s (%v), want the orders trace", out, err)
		}
		out, _ = msctl(t, 0, "traces", "--limit", "1")
		if strings.Contains(out, orders) || !strings.Contains(out, payments) {
			t.Errorf("traces --limit 1 =\n%s\nwant the newest only", out)
		}

		out, _ = msctl(t, 0, "traces", "show", orders)
		inOrder(t, "traces show", out, []string{
			"trace " + orders, "orders: POST /api/v1/orders", "3 spans, 1 error,",
			"SPAN", "SERVICE", "STATUS", "OFFSET", "DURATION", "TIMELINE\n",
			"POST /api/v1/orders", "orders", "ok", "|" + strings.Repeat("█", barWidth) + "|\n", // the root spans the trace
			"  reserve", "orders", "ok", "|", "|\n",
			"  charge", "orders", "error", "|", "|\n",
		})
		out, _ = msctl(t, 0, "traces", "show", orders, "--json")
		var spans []state.Span
		if err := json.Unmarshal([]byte(out), &spans); err != nil || len(spans) != 3 || spans[0].Name != "POST /api/v1/orders" {
			t.Errorf("traces show --json = %s (%v), want 3 spans, the root first", out, err)
		}

		_, errOut := msctl(t, 1, "traces", "show", "ffff")
		if !strings.Contains(errOut, "msctl: no trace ffff (msctl traces lists them)") {
			t.Errorf("unknown trace: stderr %q", errOut)
		}
	}
	t.Run("agent", check)
	if err := a.Down(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	t.Run("store", check)
}
