package e2e

import (
	"strings"
	"testing"
)

// TestLogsSince checks `msctl logs --since` against the running workspace:
// the boot lines of the gateway are older than a millisecond, and a day's
// window holds at least everything kept a moment ago. Counts, not times, so
// it does not depend on how busy the machine is.
func TestLogsSince(t *testing.T) {
	ensureUp(t)
	lines := func(args ...string) []string {
		t.Helper()
		r := shop.Must(t, append([]string{"logs"}, args...)...)
		out := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
		if len(out) == 1 && out[0] == "" {
			return nil
		}
		for _, l := range out {
			// "15:04:05.000 LEVEL service …": the service after 19 cells.
			if len(l) < 19 || !strings.HasPrefix(l[19:], "gateway ") {
				t.Fatalf("logs %v printed a line without the gateway in its service column: %q", args, l)
			}
		}
		return out
	}
	all := lines("gateway")
	if len(all) == 0 {
		t.Fatal("the gateway has no logs")
	}
	if day := lines("gateway", "--since", "24h"); len(day) < len(all) {
		t.Errorf("--since 24h: %d lines, fewer than the %d kept", len(day), len(all))
	}
	if recent := lines("gateway", "--since", "1ms"); len(recent) >= len(all) {
		t.Errorf("--since 1ms: %d lines, want fewer than the %d kept since boot", len(recent), len(all))
	}
}
