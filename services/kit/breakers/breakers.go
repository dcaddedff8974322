// Package breakers declares the wire shape of a service's GET /debug/breakers,
// once: kit/client serves it and msctl's agent decodes it. It has no
// dependencies, so the msctl binary can import it without pulling in the
// services' HTTP client and breaker libraries.
package breakers

import "time"

// Status is one entry of GET /debug/breakers: one circuit breaker, named by
// the upstream it guards.
type Status struct {
	Name                 string     `json:"name"`
	State                string     `json:"state"` // closed, open, half-open
	Requests             uint32     `json:"requests"`
	TotalSuccesses       uint32     `json:"total_successes"`
	TotalFailures        uint32     `json:"total_failures"`
	ConsecutiveSuccesses uint32     `json:"consecutive_successes"`
	ConsecutiveFailures  uint32     `json:"consecutive_failures"`
	OpenUntil            *time.Time `json:"open_until,omitempty"` // set while open
}
