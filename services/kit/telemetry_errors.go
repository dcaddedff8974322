package kit

import (
	"log/slog"
	"sync"
	"time"
)

// telemetryErrors is OpenTelemetry's error handler in a service: export failures go to the
// service's JSON log at warn level, one line per interval at most. The metrics exporter posts every
// 2s whether or not anything was recorded, so while the agent is away (killed, restarting, or
// older than the service) OpenTelemetry's default handler would print a raw line every 2s.
type telemetryErrors struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (h *telemetryErrors) Handle(err error) {
	h.mu.Lock()
	now := time.Now()
	if !h.last.IsZero() && now.Sub(h.last) < h.every {
		h.suppressed++
		h.mu.Unlock()
		return
	}
	n := h.suppressed
	h.last, h.suppressed = now, 0
	h.mu.Unlock()
	h.log.Warn("telemetry export failed", "err", err, "suppressed_since_last", n)
}
