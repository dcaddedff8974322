package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

func TestWatchAPI(t *testing.T) {
	_, c := idleClient(t)
	// Not up yet: watching needs running services to map changes to.
	_, err := c.SetWatch(t.Context(), true)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "not_up" {
		t.Errorf("watch before up: %v, want not_up", err)
	}
	if s, err := c.Watch(t.Context()); err != nil || s.On || len(s.Events) != 0 {
		t.Errorf("status before any watch: %+v, %v", s, err)
	}
	// Turning off what is not on is no error.
	if s, err := c.SetWatch(t.Context(), false); err != nil || s.On {
		t.Errorf("watch off: %+v, %v", s, err)
	}
	if err := c.do(t.Context(), "POST", "/api/watch?on=yes", nil); !errors.As(err, &ae) || ae.Code != "bad_request" {
		t.Errorf("on=yes: %v, want bad_request", err)
	}
}

func TestDescribeChanges(t *testing.T) {
	took := 1400 * time.Millisecond
	for _, c := range []struct {
		who     string
		changes []state.Change
		want    string
	}{
		{"gateway", []state.Change{{Service: "gateway", What: "code changed, restarted"}},
			"gateway: change detected → building → replaced 2/2 (1.4s)"},
		{"gateway", nil, "gateway: change detected → building → unchanged (1.4s)"},
		{"msctl.yaml", []state.Change{{Service: "orders", What: "env changed, restarted"}, {Service: "users", What: "scaled 1 → 2"}},
			"msctl.yaml: change detected → building → orders: env changed → replaced 1/1; users: scaled 1 → 2 (1.4s)"},
		{"orders, users", []state.Change{{Service: "users", What: "code changed, restarted"}},
			"orders, users: change detected → building → users: replaced 2/2 (1.4s)"},
	} {
		got := describeChanges(c.who, c.changes, map[string]int{"gateway": 2, "orders": 1, "users": 2}, took)
		if got != c.want {
			t.Errorf("describeChanges(%s, %v) =\n%q, want\n%q", c.who, c.changes, got, c.want)
		}
	}
}
