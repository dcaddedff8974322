package state

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The component states are wire values: ps --json, the agent's snapshot and
// the dashboard have always carried these strings.
func TestStateWireValues(t *testing.T) {
	for st, want := range map[State]string{
		StateBuilding: "building", StateStarting: "starting", StateWaiting: "waiting",
		StateHealthy: "healthy", StateUnhealthy: "unhealthy", StateCrashed: "crashed",
		StateStopped: "stopped", StateOrphaned: "orphaned",
	} {
		b, err := json.Marshal(Component{State: st})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"state":"`+want+`"`) {
			t.Errorf("%s marshals as %s", want, b)
		}
	}
}

func TestAgo(t *testing.T) {
	if got := Ago(0); !got.IsZero() {
		t.Errorf("Ago(0) = %v, want the zero time (every kept line)", got)
	}
	before := time.Now()
	got := Ago(time.Minute)
	if got.Before(before.Add(-time.Minute)) || got.After(time.Now().Add(-time.Minute)) {
		t.Errorf("Ago(1m) = %v, want a minute before %v", got, before)
	}
}
