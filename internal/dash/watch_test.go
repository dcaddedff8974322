package dash

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/state"
)

func TestWatchKey(t *testing.T) {
	on := &state.WatchStatus{On: true}
	tests := []struct {
		name        string
		watch       *state.WatchStatus // in the snapshot
		disconnect  bool
		srcErr      error
		wantWatches []bool
		wantStatus  string
	}{
		{"never watched: w turns it on", nil, false, nil, []bool{true}, "watching the sources: a change rebuilds and replaces the services it affects"},
		{"turned off before: w turns it on", &state.WatchStatus{}, false, nil, []bool{true}, "watching the sources: a change rebuilds and replaces the services it affects"},
		{"watching: w turns it off", on, false, nil, []bool{false}, "stopped watching"},
		{"refused while the agent is gone", nil, true, nil, nil, "cannot toggle watching: the agent is unreachable"},
		{"the agent's error is shown", nil, false, errors.New("the workspace is not up: it is starting"), nil, "watch: the workspace is not up: it is starting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fixture()
			s.Watch = tt.watch
			src := &fakeSource{snap: s}
			h := pressKeys(t, src, tt.disconnect, tt.srcErr, []string{"w"})
			if !slices.Equal(src.watches, tt.wantWatches) {
				t.Errorf("SetWatch calls %v, want %v", src.watches, tt.wantWatches)
			}
			if h.m.status != tt.wantStatus {
				t.Errorf("status = %q, want %q", h.m.status, tt.wantStatus)
			}
		})
	}
}

func TestWatchShown(t *testing.T) {
	s := fixture()
	h := newHarnessWith(t, &fakeSource{snap: s}, 160, 48)
	h.snapshot(s)
	if v := h.m.View(); strings.Contains(v, "watch") && strings.Contains(strings.SplitN(v, "\n", 2)[0], "watch") {
		t.Errorf("header mentions watching while it is off:\n%s", v)
	}
	for _, c := range []struct {
		w            state.WatchStatus
		header, line string
	}{
		{state.WatchStatus{On: true}, "watching", ""},
		{state.WatchStatus{On: true, Busy: true}, "watch: building…", ""},
		{
			state.WatchStatus{On: true, BuildError: "build: go build in /ws: exit status 1\n# example.com/ws/services/b\nservices/b/handler.go:3:13: syntax error: unexpected {, expected )"},
			"watch: build failed",
			"build failed: services/b/handler.go:3:13: syntax error: unexpected {, expected )",
		},
	} {
		s.Watch = &c.w
		h.snapshot(s)
		lines := strings.Split(h.m.View(), "\n")
		if !strings.Contains(lines[0], c.header) {
			t.Errorf("%+v: header %q lacks %q", c.w, lines[0], c.header)
		}
		if c.line != "" && !strings.Contains(lines[len(lines)-2], c.line) {
			t.Errorf("%+v: status line %q lacks %q", c.w, lines[len(lines)-2], c.line)
		}
	}
}
