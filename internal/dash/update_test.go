package dash

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/msctl/msctl/internal/state"
)

func TestKeys(t *testing.T) {
	tests := []struct {
		name       string
		keys       []string
		wantPanel  int
		wantSel    string // selected component on the services panel, if set
		wantHelp   bool
		wantFilter string // the active panel's filter
		wantQuit   bool
	}{
		{name: "starts on services", wantPanel: panelServices, wantSel: "postgres"},
		{name: "tab moves right", keys: []string{"tab"}, wantPanel: panelRegistry},
		{name: "tab wraps", keys: []string{"7", "tab"}, wantPanel: panelServices},
		{name: "shift+tab wraps left", keys: []string{"shift+tab"}, wantPanel: panelMetrics},
		{name: "number keys", keys: []string{"4"}, wantPanel: panelBreakers},
		{name: "down and j", keys: []string{"down", "j"}, wantPanel: panelServices, wantSel: "etcd"},
		{name: "up and k stop at the top", keys: []string{"j", "up", "k", "k"}, wantSel: "postgres"},
		{name: "end and home", keys: []string{"end"}, wantSel: "gateway"},
		{name: "G then g", keys: []string{"G", "g"}, wantSel: "postgres"},
		{name: "page down stops at the last row", keys: []string{"pgdown", "pgdown"}, wantSel: "gateway"},
		{name: "help opens", keys: []string{"?"}, wantHelp: true},
		{name: "help swallows panel keys", keys: []string{"?", "3"}, wantHelp: true, wantPanel: panelServices},
		{name: "help closes with esc", keys: []string{"?", "esc"}},
		{name: "filter narrows as typed", keys: []string{"/", "o", "r", "d"}, wantFilter: "ord", wantSel: "orders"},
		{name: "filter keeps on enter", keys: []string{"/", "a", "t", "enter", "j"}, wantFilter: "at", wantSel: "notifications"},
		{name: "filter backspace", keys: []string{"/", "n", "x", "backspace"}, wantFilter: "n"},
		{name: "filter takes q as text", keys: []string{"/", "q"}, wantFilter: "q"},
		{name: "filter esc clears", keys: []string{"/", "p", "esc"}, wantFilter: ""},
		{name: "esc clears a kept filter", keys: []string{"/", "p", "enter", "esc"}, wantFilter: ""},
		{name: "filters are per panel", keys: []string{"/", "p", "enter", "2"}, wantPanel: panelRegistry, wantFilter: ""},
		{name: "q quits", keys: []string{"q"}, wantQuit: true},
		{name: "ctrl+c quits", keys: []string{"ctrl+c"}, wantQuit: true},
		{name: "ctrl+c quits while filtering", keys: []string{"/", "ctrl+c"}, wantQuit: true},
		{name: "q quits from help", keys: []string{"?", "q"}, wantHelp: true, wantQuit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 80, 24)
			h.snapshot(fixture())
			var cmd tea.Cmd
			for _, k := range tt.keys {
				cmd = h.send(keyMsg(k))
			}
			if h.m.active != tt.wantPanel {
				t.Errorf("active panel = %d, want %d", h.m.active, tt.wantPanel)
			}
			if tt.wantSel != "" {
				if c, _ := h.m.services.Selected(); c.Name != tt.wantSel {
					t.Errorf("selected = %q, want %q", c.Name, tt.wantSel)
				}
			}
			if h.m.showHelp != tt.wantHelp {
				t.Errorf("showHelp = %v, want %v", h.m.showHelp, tt.wantHelp)
			}
			if got := h.m.filters[h.m.active]; got != tt.wantFilter {
				t.Errorf("filter = %q, want %q", got, tt.wantFilter)
			}
			quit := false
			if cmd != nil {
				_, quit = cmd().(tea.QuitMsg)
			}
			if quit != tt.wantQuit {
				t.Errorf("quit = %v, want %v", quit, tt.wantQuit)
			}
		})
	}
}

func TestResize(t *testing.T) {
	tests := []struct {
		name          string
		w, h          int
		wantW, wantH  int
		switchToPanel string
	}{
		{"standard", 80, 24, 80, 24, "1"},
		{"large", 160, 48, 160, 48, "3"},
		{"narrow and short is clamped", 10, 3, 20, 8, "5"},
		{"odd", 97, 31, 97, 31, "6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 80, 24)
			h.snapshot(fixture())
			h.logLines(fixtureLogs())
			h.keys(tt.switchToPanel)
			if cmd := h.send(tea.WindowSizeMsg{Width: tt.w, Height: tt.h}); cmd != nil {
				t.Errorf("resize returned a command")
			}
			if h.m.width != tt.wantW || h.m.height != tt.wantH {
				t.Fatalf("size = %dx%d, want %dx%d", h.m.width, h.m.height, tt.wantW, tt.wantH)
			}
			lines := strings.Split(h.m.View(), "\n")
			if len(lines) != tt.wantH {
				t.Errorf("view has %d lines, want %d", len(lines), tt.wantH)
			}
			for i, l := range lines {
				if w := lineWidth(l); w != tt.wantW {
					t.Errorf("line %d is %d wide, want %d", i+1, w, tt.wantW)
				}
			}
		})
	}
}

func TestSnapshotMessages(t *testing.T) {
	refused := errors.New("connection refused")
	tests := []struct {
		name      string
		msgs      []snapshotMsg
		wantHave  bool
		wantErr   bool
		wantStale time.Time
		wantCmds  []string // messages the last update's command produces, sorted
	}{
		{
			name:     "first snapshot polls again and opens the logs",
			msgs:     []snapshotMsg{{snap: fixture(), at: now}},
			wantHave: true,
			wantCmds: []string{"dash.logsOpenedMsg", "dash.pollMsg"},
		},
		{
			name:    "no workspace keeps polling",
			msgs:    []snapshotMsg{{at: now, err: ErrNoWorkspace}},
			wantErr: true, wantStale: now,
			wantCmds: []string{"dash.pollMsg"},
		},
		{
			name:      "agent gone marks the snapshot stale from the first failure",
			msgs:      []snapshotMsg{{snap: fixture(), at: now}, {at: now.Add(time.Second), err: refused}, {at: now.Add(2 * time.Second), err: refused}},
			wantHave:  true,
			wantErr:   true,
			wantStale: now.Add(time.Second),
			wantCmds:  []string{"dash.pollMsg"},
		},
		{
			name:     "reconnect clears the error and reopens the logs",
			msgs:     []snapshotMsg{{snap: fixture(), at: now}, {at: now.Add(time.Second), err: refused}, {snap: fixture(), at: now.Add(2 * time.Second)}},
			wantHave: true, wantStale: now.Add(time.Second),
			wantCmds: []string{"dash.logsOpenedMsg", "dash.pollMsg"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{snap: fixture()}
			h := newHarnessWith(t, src, 80, 24)
			var cmd tea.Cmd
			for i, msg := range tt.msgs {
				cmd = h.send(msg)
				if i < len(tt.msgs)-1 {
					// the logs stream of the fake ends at once: deliver its end
					for _, m := range run(t, cmd) {
						if _, ok := m.(logsOpenedMsg); ok {
							h.send(m)
							h.send(logsMsg{feed: h.m.feed, closed: true})
						}
					}
				}
			}
			if h.m.have != tt.wantHave {
				t.Errorf("have = %v, want %v", h.m.have, tt.wantHave)
			}
			if (h.m.err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error: %v", h.m.err, tt.wantErr)
			}
			if !h.m.staleSince.Equal(tt.wantStale) {
				t.Errorf("staleSince = %v, want %v", h.m.staleSince, tt.wantStale)
			}
			got := kinds(run(t, cmd))
			slices.Sort(got)
			if !slices.Equal(got, tt.wantCmds) {
				t.Errorf("commands produced %v, want %v", got, tt.wantCmds)
			}
		})
	}
}

func TestPollFetchesSnapshot(t *testing.T) {
	src := &fakeSource{snap: fixture()}
	h := newHarnessWith(t, src, 80, 24)
	msgs := run(t, h.m.Init())
	if len(msgs) != 1 {
		t.Fatalf("Init produced %v", kinds(msgs))
	}
	got, ok := msgs[0].(snapshotMsg)
	if !ok || got.err != nil || got.snap.Workspace != "shop" || !got.at.Equal(now) {
		t.Fatalf("Init produced %#v", msgs[0])
	}
	if msgs := run(t, h.send(pollMsg{})); len(msgs) != 1 || kinds(msgs)[0] != "dash.snapshotMsg" {
		t.Fatalf("poll produced %v", kinds(msgs))
	}
}

// Metrics are fetched as their panel opens, then with the snapshot only
// while it is shown, and land in it.
func TestMetricsFetchedWhileShown(t *testing.T) {
	src := &fakeSource{snap: fixture(), metrics: fixtureMetrics()}
	h := newHarnessWith(t, src, 120, 30)
	h.send(logsOpenedMsg{feed: &logFeed{lines: make(chan state.LogLine), cancel: func() {}}})
	if got := kinds(run(t, h.snapshot(fixture()))); slices.Contains(got, "dash.metricsMsg") {
		t.Errorf("services panel: the snapshot fetched metrics too: %v", got)
	}
	if got := kinds(run(t, h.send(keyMsg("7")))); !slices.Equal(got, []string{"dash.metricsMsg"}) {
		t.Errorf("opening the panel produced %v, want a metrics fetch", got)
	}
	if v := h.m.View(); !strings.Contains(v, "loading metrics…") {
		t.Errorf("metrics panel before its first fetch:\n%s", v)
	}
	var fetched bool
	for _, msg := range run(t, h.snapshot(fixture())) {
		if mm, ok := msg.(metricsMsg); ok {
			fetched = true
			h.send(mm)
		}
	}
	if !fetched {
		t.Fatal("metrics panel: no metrics fetched with the snapshot")
	}
	if v := h.m.View(); !strings.Contains(v, "payments-orders (orders.evt.created)") || !strings.Contains(v, "[7 Metrics]") {
		t.Errorf("metrics panel after the fetch:\n%s", v)
	}
}

func TestTraceMessages(t *testing.T) {
	src := &fakeSource{snap: fixture(), spans: map[string][]state.Span{orderTrace: orderSpans()}}
	tests := []struct {
		name          string
		msg           func(h *harness) tea.Msg
		wantWaterfall bool
		wantStatus    string
	}{
		{"enter fetches the selected trace", func(h *harness) tea.Msg { return run(t, h.send(keyMsg("enter")))[0] }, true, ""},
		{"a trace that was not asked for is ignored", func(h *harness) tea.Msg {
			h.keys("enter")
			return traceMsg{id: "other", spans: orderSpans()}
		}, false, "loading trace 4bf92f35…"},
		{"an error is shown", func(h *harness) tea.Msg {
			h.keys("enter")
			return traceMsg{id: orderTrace, err: errors.New("trace not found")}
		}, false, "trace 4bf92f35: trace not found"},
		{"esc while loading drops the answer", func(h *harness) tea.Msg {
			h.keys("enter", "esc")
			return traceMsg{id: orderTrace, spans: orderSpans()}
		}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessWith(t, src, 80, 24)
			h.snapshot(fixture())
			h.keys("3")
			h.send(tt.msg(h))
			if (h.m.waterfall != nil) != tt.wantWaterfall {
				t.Errorf("waterfall open = %v, want %v", h.m.waterfall != nil, tt.wantWaterfall)
			}
			if h.m.status != tt.wantStatus {
				t.Errorf("status = %q, want %q", h.m.status, tt.wantStatus)
			}
		})
	}
}

func TestWaterfallNavigation(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.snapshot(fixture())
	h.keys("3", "enter")
	h.send(traceMsg{id: orderTrace, spans: orderSpans()})
	h.keys("end")
	if !strings.Contains(h.m.View(), "▶           payments: INSERT char") {
		t.Errorf("end did not select the last span:\n%s", h.m.View())
	}
	h.keys("esc")
	if h.m.waterfall != nil {
		t.Fatal("esc did not close the waterfall")
	}
	if t0, _ := h.m.traces.Selected(); t0.TraceID != orderTrace {
		t.Errorf("trace selection moved to %s", t0.TraceID)
	}
}

func TestRestart(t *testing.T) {
	tests := []struct {
		name          string
		keys          []string
		srcErr        error
		disconnect    bool
		wantRestarted []string
		wantStatus    string
	}{
		{"restarts the selected service", []string{"1", "j", "j", "j", "r"}, nil, false, []string{"users"}, "users restarted"},
		{"from the registry panel", []string{"2", "r"}, nil, false, []string{"gateway"}, "gateway restarted"},
		{"from the logs of one service", []string{"1", "end", "enter", "r"}, nil, false, []string{"gateway"}, "gateway restarted"},
		{"infrastructure restarts too", []string{"1", "r"}, nil, false, []string{"postgres"}, "postgres restarted"},
		{"no service on the traces panel", []string{"3", "r"}, nil, false, nil, "select a service to restart (1: services)"},
		{"refused while the agent is gone", []string{"1", "end", "r"}, nil, true, nil, "cannot restart gateway: the agent is unreachable"},
		{"the agent's error is shown", []string{"1", "end", "r"}, errors.New("agent: restart gateway: timeout"), false, nil, "restart gateway: agent: restart gateway: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{snap: fixture()}
			h := pressKeys(t, src, tt.disconnect, tt.srcErr, tt.keys)
			if !slices.Equal(src.restarted, tt.wantRestarted) {
				t.Errorf("restarted %v, want %v", src.restarted, tt.wantRestarted)
			}
			if h.m.status != tt.wantStatus {
				t.Errorf("status = %q, want %q", h.m.status, tt.wantStatus)
			}
		})
	}
}

func TestLogFeed(t *testing.T) {
	lines := fixtureLogs()
	src := &fakeSource{snap: fixture(), logs: lines}
	h := newHarnessWith(t, src, 80, 24)
	// Drive the real feed until its stream ends.
	pending := run(t, h.snapshot(fixture()))
	for i := 0; len(pending) > 0 && i < 100; i++ {
		msg := pending[0]
		pending = pending[1:]
		if _, ok := msg.(pollMsg); ok {
			continue // no more polling in this test
		}
		pending = append(pending, run(t, h.send(msg))...)
	}
	if h.m.feed != nil {
		t.Fatal("the feed of an ended stream is still held")
	}
	if !h.m.logsUntil.Equal(lines[len(lines)-1].Time) {
		t.Errorf("logsUntil = %v, want the last line's time", h.m.logsUntil)
	}
	h.keys("5", "l", "l", "l") // level debug shows every line
	if got := h.m.View(); !strings.Contains(got, "40 of 40 lines") {
		t.Errorf("logs panel does not hold the 40 lines:\n%s", got)
	}

	// A resumed feed repeats lines the model already has: they are dropped.
	resumed := &logFeed{lines: make(chan state.LogLine), cancel: func() {}, resumed: true}
	h.send(logsOpenedMsg{feed: resumed})
	newer := state.LogLine{Time: now.Add(time.Second), Service: "orders", Text: "after the reconnect"}
	h.send(logsMsg{feed: resumed, lines: append(slices.Clone(lines[30:]), newer)})
	if got := h.m.View(); !strings.Contains(got, "42 of 42 lines") {
		// lines[39] has the newest time seen: it is kept (same time), the older ones are dropped
		t.Errorf("resumed feed was not deduplicated:\n%s", got)
	}

	// Lines from a feed that was replaced are ignored.
	h.send(logsMsg{feed: &logFeed{}, lines: []state.LogLine{newer}})
	if got := h.m.View(); !strings.Contains(got, "42 of 42 lines") {
		t.Errorf("lines of a stale feed were taken:\n%s", got)
	}
}

func TestLogsKeys(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		want string // in the logs header
	}{
		{"defaults", nil, "service: all · level ≥ info · following"},
		{"level cycles", []string{"l", "l", "l"}, "level ≥ debug"},
		{"service cycles through components", []string{"s", "s"}, "service: nats"},
		{"service wraps to all", slices.Repeat([]string{"s"}, 10), "service: all"},
		{"esc shows all services", []string{"s", "esc"}, "service: all"},
		{"f pauses", []string{"f"}, "paused, 0 newer"},
		{"moving up pauses", []string{"k", "k"}, "paused, 2 newer"},
		{"end resumes", []string{"k", "end"}, "following"},
		{"filter", []string{"/", "d", "e", "c", "l", "enter"}, `3 of 40 lines · matching "decl"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 80, 24)
			h.snapshot(fixture())
			h.logLines(fixtureLogs())
			h.keys("5")
			h.keys(tt.keys...)
			if got := h.m.View(); !strings.Contains(got, tt.want) {
				t.Errorf("view lacks %q:\n%s", tt.want, got)
			}
		})
	}
}

func TestEventsAreNotRepeated(t *testing.T) {
	h := newHarness(t, 80, 24)
	snap := fixture()
	h.snapshot(snap)
	h.snapshot(snap) // the agent repeats its recent events in every snapshot
	next := snap
	next.Events = append(slices.Clone(snap.Events[10:]), state.Event{Time: now.Add(time.Second), Subject: "orders.created", Stream: "ORDERS", MsgID: "msg-new", Size: 200})
	h.snapshot(next)
	h.keys("6")
	view := h.m.View()
	if !regexp.MustCompile(`orders\.created +ORDERS +4 `).MatchString(view) {
		t.Errorf("orders.created should count 4 messages:\n%s", view)
	}
}

func TestEnterDrillsIn(t *testing.T) {
	tests := []struct {
		name        string
		keys        []string
		wantPanel   int
		wantService string
	}{
		{"services opens the logs of the service", []string{"1", "j", "j", "j", "enter"}, panelLogs, "users"},
		{"breakers opens the logs of the owner", []string{"4", "end", "enter"}, panelLogs, "orders"},
		{"registry opens the logs", []string{"2", "enter"}, panelLogs, "gateway"},
		{"events narrows the flow, staying", []string{"6", "enter"}, panelEvents, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 80, 24)
			h.snapshot(fixture())
			h.keys(tt.keys...)
			if h.m.active != tt.wantPanel || h.m.logs.Service() != tt.wantService {
				t.Errorf("panel %d service %q, want %d %q", h.m.active, h.m.logs.Service(), tt.wantPanel, tt.wantService)
			}
		})
	}
}

func TestRedial(t *testing.T) {
	dials := 0
	var next []Source
	r := Redial(func(context.Context) (Source, error) {
		dials++
		if len(next) == 0 {
			return nil, fmt.Errorf("read agent.json: %w", ErrNoWorkspace)
		}
		s := next[0]
		next = next[1:]
		return s, nil
	})
	ctx := context.Background()
	if _, err := r.Snapshot(ctx); !errors.Is(err, ErrNoWorkspace) {
		t.Fatalf("Snapshot with no agent = %v, want ErrNoWorkspace", err)
	}
	first := &fakeSource{snap: state.Snapshot{AgentPID: 1}}
	second := &fakeSource{snap: state.Snapshot{AgentPID: 2}}
	next = []Source{first, second}
	for range 2 {
		if s, err := r.Snapshot(ctx); err != nil || s.AgentPID != 1 {
			t.Fatalf("Snapshot = %v, %v; want the first agent", s.AgentPID, err)
		}
	}
	first.err = errors.New("connection refused")
	if _, err := r.Snapshot(ctx); err == nil {
		t.Fatal("Snapshot of a dead agent succeeded")
	}
	if s, err := r.Snapshot(ctx); err != nil || s.AgentPID != 2 {
		t.Fatalf("Snapshot after the agent came back = %v, %v; want the second agent", s.AgentPID, err)
	}
	if err := r.Restart(ctx, "orders"); err != nil || !slices.Equal(second.restarted, []string{"orders"}) {
		t.Fatalf("Restart went elsewhere: %v, %v", err, second.restarted)
	}
	if dials != 3 {
		t.Errorf("dialled %d times, want 3", dials)
	}
}

// pressKeys shows the fixture from src, then, the agent gone if
// disconnect, with src failing with srcErr, presses keys and delivers what
// the last key's command answers.
func pressKeys(t *testing.T, src *fakeSource, disconnect bool, srcErr error, keys []string) *harness {
	t.Helper()
	h := newHarnessWith(t, src, 80, 24)
	h.snapshot(src.snap)
	if disconnect {
		h.send(snapshotMsg{at: now, err: errors.New("connection refused")})
	}
	src.err = srcErr
	var cmd tea.Cmd
	for _, k := range keys {
		cmd = h.send(keyMsg(k))
	}
	for _, m := range run(t, cmd) {
		h.send(m)
	}
	return h
}

func TestChaosKeys(t *testing.T) {
	tests := []struct {
		name       string
		keys       []string
		disconnect bool
		wantFaults []state.FaultRequest
		wantClears int
		wantStatus string
	}{
		{"x takes the selected breaker's edge down for 30s", []string{"4", "j", "x"}, false,
			[]state.FaultRequest{{FaultSpec: state.FaultSpec{From: "gateway", To: "payments", Down: true}, ForMS: 30000}}, 0,
			"fault 1: gateway->payments down for 30s"},
		{"X clears the faults", []string{"4", "X"}, false, nil, 1, "cleared 0 faults"},
		{"x only on the breakers panel", []string{"1", "x"}, false, nil, 0, ""},
		{"refused while the agent is gone", []string{"4", "x"}, true, nil, 0, "cannot add a fault: the agent is unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{snap: fixture()}
			h := pressKeys(t, src, tt.disconnect, nil, tt.keys)
			if !slices.Equal(src.faults, tt.wantFaults) || src.clears != tt.wantClears {
				t.Errorf("faults asked %+v, clears %d; want %+v, %d", src.faults, src.clears, tt.wantFaults, tt.wantClears)
			}
			if h.m.status != tt.wantStatus {
				t.Errorf("status = %q, want %q", h.m.status, tt.wantStatus)
			}
		})
	}
}
