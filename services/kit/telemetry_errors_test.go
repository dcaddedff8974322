package kit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/services/kit/logx"
)

func TestTelemetryErrorsAreLoggedOncePerInterval(t *testing.T) {
	var out bytes.Buffer
	h := &telemetryErrors{log: logx.New("test", "info", &out), every: 200 * time.Millisecond}
	for range 5 {
		h.Handle(errors.New("failed to upload metrics: 404"))
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("%d lines for 5 failures within the interval, want 1:\n%s", n, &out)
	}
	time.Sleep(250 * time.Millisecond)
	h.Handle(errors.New("failed to upload metrics: 404"))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"suppressed_since_last":4`) || !strings.Contains(lines[1], "404") {
		t.Fatalf("after the interval: %q, want a second line counting the 4 suppressed", lines)
	}
}
