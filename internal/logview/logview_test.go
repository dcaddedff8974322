package logview

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/services/kit/logx"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMain(m *testing.M) {
	// Times are shown in the local zone; the goldens are in UTC.
	time.Local = time.UTC
	os.Exit(m.Run())
}

var stampRE = regexp.MustCompile(`"time":"[^"]*"`)

var at = time.Date(2026, 12, 3, 8, 30, 0, 0, time.UTC)

// sample is what the printer meets: lines of kit/logx itself, so a change of
// its format shows up here, and lines no logger wrote.
func sample(t *testing.T) []state.LogLine {
	t.Helper()
	var buf bytes.Buffer
	log := logx.New("orders", "debug", &buf)
	log.Debug("cache miss", "key", "order:42")
	log.Info("order placed", "order_id", 42, "total", 19.99, "note", "gift wrap, please", "paid", true)
	log.Warn("slow query", slog.Group("db", "table", "orders", "ms", 812), "tags", []string{"a", "b c"})
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 15: 1}, SpanID: trace.SpanID{0xcd, 7: 2}, TraceFlags: trace.FlagsSampled})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "POST /api/v1/orders", "status", 201, "ms", 4.2)
	log.Error("charge failed", "err", "payments: 503 Service Unavailable", "attempt", 3, "empty", "", "eq", "a=b")
	var lines []state.LogLine
	for i, text := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		// logx stamps the real time: replace it so the goldens are stable.
		stamp := fmt.Sprintf(`"time":"2026-12-03T08:30:0%d.25+00:00"`, i+1)
		rec := stampRE.ReplaceAllString(string(text), stamp)
		lines = append(lines, state.LogLine{Time: at, Service: "orders", Stream: "stdout", Level: state.LevelOf(rec), Text: rec})
	}
	return append(lines,
		state.LogLine{Time: at.Add(7 * time.Second), Service: "gateway", Stream: "stderr", Text: "panic: runtime error: index out of range"},
		state.LogLine{Time: at.Add(8 * time.Second), Service: "users", Stream: "stdout", Text: `{"msg":"no level or time","level":7,"nested":{"a":{"b":null},"e":{}}}`},
		state.LogLine{Time: at.Add(9 * time.Second), Service: "users", Stream: "stdout", Text: `{"broken json`},
	)
}

func TestGolden(t *testing.T) {
	ascii, ansi := lipgloss.NewRenderer(os.Stdout), lipgloss.NewRenderer(os.Stdout)
	ascii.SetColorProfile(termenv.Ascii)
	ansi.SetColorProfile(termenv.ANSI)
	tests := []struct {
		name string
		opts Options
	}{
		{"plain", Options{Renderer: ascii, Width: 7, MinLevel: slog.LevelDebug}},
		{"colour", Options{Renderer: ansi, Width: 7, MinLevel: slog.LevelDebug}},
		{"warn", Options{Renderer: ascii, Width: 7, MinLevel: slog.LevelWarn}},
		{"raw_error", Options{Renderer: ascii, Raw: true, MinLevel: slog.LevelError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := New(&out, tt.opts)
			for _, l := range sample(t) {
				if err := p.Print(l); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if out.String() != string(want) {
				t.Errorf("%s differs (go test -update rewrites it):\n got:\n%s\nwant:\n%s", path, out.String(), want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	if l, err := ParseLevel(""); err != nil || l != slog.LevelDebug {
		t.Errorf(`ParseLevel("") = %v, %v; want every line`, l, err)
	}
	if l, err := ParseLevel("WARN"); err != nil || l != slog.LevelWarn {
		t.Errorf(`ParseLevel("WARN") = %v, %v`, l, err)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error(`ParseLevel("loud") accepted`)
	}
}

// TestColourFromEnvironment checks the printer's own choice of colour: the
// writer here is no terminal, so only CLICOLOR_FORCE brings colour, and
// NO_COLOR takes it away again.
func TestColourFromEnvironment(t *testing.T) {
	line := state.LogLine{Time: at, Service: "orders", Text: `{"level":"ERROR","msg":"boom"}`}
	tests := []struct {
		force, noColor string
		colour         bool
	}{
		{"", "", false},
		{"1", "", true},
		{"1", "1", false},
	}
	for _, tt := range tests {
		t.Setenv("CLICOLOR_FORCE", tt.force)
		t.Setenv("NO_COLOR", tt.noColor)
		var out bytes.Buffer
		if err := New(&out, Options{}).Print(line); err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(out.Bytes(), []byte("\x1b[")); got != tt.colour {
			t.Errorf("CLICOLOR_FORCE=%q NO_COLOR=%q: colour %v, want %v: %q", tt.force, tt.noColor, got, tt.colour, out.String())
		}
	}
}
