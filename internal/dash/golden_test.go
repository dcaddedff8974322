package dash

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/msctl/msctl/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMain(m *testing.M) {
	// Goldens hold the rendered text exactly; without colour, styles add
	// nothing, so what is compared is what a no-colour terminal shows.
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

var goldenSizes = []struct{ w, h int }{{80, 24}, {160, 48}}

func TestViewGolden(t *testing.T) {
	ready := func(h *harness) {
		h.snapshot(fixture())
		h.logLines(fixtureLogs())
	}
	tests := []struct {
		name  string
		setup func(h *harness)
	}{
		{"services", func(h *harness) { ready(h); h.keys("1", "down", "down", "down", "down", "down") }},
		{"services_long_name", func(h *harness) {
			// A name longer than any column minimum is shown whole: columns
			// are sized to their content, free text gives way first.
			s := fixture()
			s.Components = append(s.Components, state.Component{
				Name: "recommendations-engine", Kind: state.KindService, State: state.StateHealthy, Health: "ok",
				Endpoint: "127.0.0.1:41006", Instances: 1, StartedAt: ago(time.Hour),
			})
			h.snapshot(s)
			h.keys("1")
		}},
		{"services_watch_failed", func(h *harness) {
			// Watching, the last build failed: the header says so and the
			// status line shows the compiler's message.
			s := fixture()
			s.Watch = &state.WatchStatus{On: true, BuildError: "build: go build in /home/dev/shop: exit status 1\n# github.com/msctl/msctl/services/orders\nservices/orders/api/handler.go:42:2: undefined: ordersTotal"}
			h.snapshot(s)
			h.keys("1")
		}},
		{"registry", func(h *harness) { ready(h); h.keys("2", "down") }},
		{"traces", func(h *harness) { ready(h); h.keys("3") }},
		{"waterfall", func(h *harness) {
			ready(h)
			h.keys("3", "enter")
			h.send(traceMsg{id: orderTrace, spans: orderSpans()})
			h.keys("down", "down", "down", "down", "down", "down")
		}},
		{"breakers", func(h *harness) { ready(h); h.keys("4", "down") }},
		{"breakers_faults", func(h *harness) {
			s := fixture()
			exp := now.Add(12 * time.Second)
			s.Faults = []state.Fault{
				{ID: "1", FaultSpec: state.FaultSpec{From: "gateway", To: "payments", Down: true}, CreatedAt: now, ExpiresAt: &exp},
				{ID: "2", FaultSpec: state.FaultSpec{From: "orders", To: "nats", LatencyMS: 300, JitterMS: 50}, CreatedAt: now},
			}
			h.snapshot(s)
			h.logLines(fixtureLogs())
			h.keys("4", "down")
		}},
		{"logs", func(h *harness) { ready(h); h.keys("5") }},
		{"logs_service", func(h *harness) { ready(h); h.keys("1", "down", "down", "down", "down", "down", "down", "enter") }},
		{"logs_errors", func(h *harness) { ready(h); h.keys("5", "l", "l") }},
		{"events", func(h *harness) { ready(h); h.keys("6", "down", "enter") }},
		{"events_dlq", func(h *harness) {
			s := fixture()
			s.DLQDepth = 3
			h.snapshot(s)
			h.keys("6")
		}},
		{"metrics", func(h *harness) {
			ready(h)
			h.keys("7")
			h.send(metricsMsg{metrics: fixtureMetrics()})
			h.keys("down", "down", "down")
		}},
		{"metrics_empty", func(h *harness) { ready(h); h.keys("7"); h.send(metricsMsg{metrics: state.Metrics{StepMS: 2000}}) }},
		{"help", func(h *harness) { ready(h); h.keys("?") }},
		{"filter", func(h *harness) { ready(h); h.keys("/", "p", "a", "y") }},
		{"no_workspace", func(h *harness) {
			h.send(snapshotMsg{at: now, err: fmt.Errorf("connect: %w", ErrNoWorkspace)})
		}},
		{"unreachable", func(h *harness) {
			h.send(snapshotMsg{at: now, err: errors.New("dial tcp 127.0.0.1:39999: connect: connection refused")})
		}},
		{"stale", func(h *harness) {
			ready(h)
			h.send(snapshotMsg{at: now.Add(3e9), err: errors.New("connection refused")})
		}},
	}
	for _, tt := range tests {
		for _, size := range goldenSizes {
			name := fmt.Sprintf("%s_%dx%d", tt.name, size.w, size.h)
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, size.w, size.h)
				tt.setup(h)
				checkGolden(t, name, h.m.View(), size.w, size.h)
			})
		}
	}
}

func checkGolden(t *testing.T, name, got string, w, h int) {
	t.Helper()
	lines := strings.Split(got, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := lipgloss.Width(l); n != w {
			t.Errorf("line %d is %d cells wide, want %d: %q", i+1, n, w, l)
		}
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got == string(want) {
		return
	}
	wl := strings.Split(string(want), "\n")
	for i := range max(len(lines), len(wl)) {
		var g, w string
		if i < len(lines) {
			g = lines[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs from the view at line %d (go test -update rewrites it):\n got: %q\nwant: %q", path, i+1, g, w)
		}
	}
}
