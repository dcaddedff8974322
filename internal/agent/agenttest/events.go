package agenttest

import (
	"testing"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
)

// Snapshot is the agent's snapshot of the workspace in dir.
func Snapshot(t *testing.T, dir string) state.Snapshot {
	t.Helper()
	c, err := agent.Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// EventsCountedOnce checks, after an order went through the shop in dir, that
// the agent counted each published message once, although every consumer's
// delivery of it passes the agent's `>` subscription too, and that it counted
// those deliveries per consumer.
func EventsCountedOnce(t *testing.T, dir string) {
	t.Helper()
	snap := Snapshot(t, dir)
	seen := map[string]int{}
	for _, e := range snap.Events {
		if e.MsgID != "" {
			seen[e.Subject+" "+e.MsgID]++
		}
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("event %s counted %d times, want once", k, n)
		}
	}
	if len(seen) == 0 || len(snap.Deliveries) == 0 {
		t.Errorf("after an order: %d events, deliveries %+v; want both", len(seen), snap.Deliveries)
	}
}
