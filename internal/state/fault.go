package state

import (
	"fmt"
	"strings"
	"time"
)

// FaultSpec is what a fault does to one edge FROM->TO (a service and a
// service, nats, etcd or postgres it dials). Zero fields do nothing; at
// least one must be set.
type FaultSpec struct {
	From string `json:"from"`
	To   string `json:"to"`
	// LatencyMS delays every chunk of the answers on the edge, ±JitterMS.
	LatencyMS int64 `json:"latency_ms,omitempty"`
	JitterMS  int64 `json:"jitter_ms,omitempty"`
	// ErrorRate (0..1) is the share of sends (requests) at which the
	// connection is closed.
	ErrorRate float64 `json:"error_rate,omitempty"`
	// Down refuses new connections and cuts the open ones.
	Down bool `json:"down,omitempty"`
	// BandwidthKBps limits both directions to this many KB/s.
	BandwidthKBps int64 `json:"bandwidth_kbps,omitempty"`
}

// Edge names the edge as `msctl chaos` takes it.
func (f FaultSpec) Edge() string { return f.From + "->" + f.To }

// Describe is a one-line summary of what the fault does.
func (f FaultSpec) Describe() string {
	var parts []string
	if f.Down {
		parts = append(parts, "down")
	}
	if f.LatencyMS > 0 {
		l := fmt.Sprintf("latency %s", time.Duration(f.LatencyMS)*time.Millisecond)
		if f.JitterMS > 0 {
			l += fmt.Sprintf("±%s", time.Duration(f.JitterMS)*time.Millisecond)
		}
		parts = append(parts, l)
	}
	if f.ErrorRate > 0 {
		parts = append(parts, fmt.Sprintf("errors %g%%", f.ErrorRate*100))
	}
	if f.BandwidthKBps > 0 {
		parts = append(parts, fmt.Sprintf("%dKB/s", f.BandwidthKBps))
	}
	return strings.Join(parts, ", ")
}

// Fault is an active fault the agent applies.
type Fault struct {
	ID string `json:"id"`
	FaultSpec
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the fault removes itself; nil keeps it until
	// `chaos rm`, `chaos clear` or `down`.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// FaultRequest is the body of POST /api/chaos.
type FaultRequest struct {
	FaultSpec
	// ForMS is how long the fault lasts; 0 until removed.
	ForMS int64 `json:"for_ms,omitempty"`
}
