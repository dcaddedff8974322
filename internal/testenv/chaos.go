package testenv

import (
	"strings"
	"testing"
	"time"
)

// CheckLatencyOnGatewayToOrders is the chaos check every runtime shares:
// reading order id through api takes under 500ms without faults, at least
// latency with a latency fault on gateway->orders (which chaos ls lists),
// and under 500ms again once chaos rm removed it.
func (s Shop) CheckLatencyOnGatewayToOrders(t testing.TB, api *API, token, id string, latency time.Duration) {
	t.Helper()
	if took := api.OrderReadTime(t, token, id); took >= 500*time.Millisecond {
		t.Fatalf("reading an order took %s before any fault", took)
	}
	f := s.AddFault(t, "gateway->orders", "--latency", latency.String())
	if took := api.OrderReadTime(t, token, id); took < latency {
		t.Errorf("with %s latency on gateway->orders, reading an order took %s", latency, took)
	}
	if out := s.Must(t, "chaos", "ls").Stdout; !strings.Contains(out, f.ID) || !strings.Contains(out, "gateway->orders") {
		t.Errorf("chaos ls does not list fault %s:\n%s", f.ID, out)
	}
	s.Must(t, "chaos", "rm", f.ID)
	if took := api.OrderReadTime(t, token, id); took >= 500*time.Millisecond {
		t.Errorf("after removing the fault, reading an order took %s", took)
	}
}
