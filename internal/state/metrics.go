package state

import "time"

// MetricKind says what a metrics row measures.
type MetricKind string

// Metric kinds: the requests a service serves per route, the calls it makes
// per peer (an edge of the call graph), the messages it processes per
// consumer.
const (
	MetricRoute    MetricKind = "route"
	MetricEdge     MetricKind = "edge"
	MetricConsumer MetricKind = "consumer"
)

// Metrics is what GET /api/metrics answers: the services' RED figures as the
// agent received them over OTLP, every instance of a service merged.
type Metrics struct {
	TakenAt time.Time `json:"taken_at"`
	// StepMS is the width of one point of the series; WindowMS the span the
	// rates, error shares and percentiles are taken over (the newest steps).
	StepMS   int64       `json:"step_ms"`
	WindowMS int64       `json:"window_ms"`
	Rows     []MetricRow `json:"rows"`
}

// MetricRow is one service's figures for one route, peer or consumer.
type MetricRow struct {
	Service string     `json:"service"`
	Kind    MetricKind `json:"kind"`
	// Name is the route ("GET /api/v1/orders"), the peer service called, or
	// the consumer's durable name.
	Name string `json:"name"`
	// Subject is a consumer's subject.
	Subject string `json:"subject,omitempty"`

	// Over the window: requests (or messages), their rate per second,
	// the share that failed in percent, and the median and 99th percentile
	// duration in milliseconds, interpolated within histogram buckets.
	Requests uint64  `json:"requests"`
	RPS      float64 `json:"rps"`
	ErrorPct float64 `json:"error_pct"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`

	// Total and TotalErrors count since the agent started.
	Total       uint64 `json:"total"`
	TotalErrors uint64 `json:"total_errors"`

	// One point per step, oldest first, the newest last: the rate and the
	// p99 (0 where nothing was measured).
	RPSSeries []float64 `json:"rps_series,omitempty"`
	P99Series []float64 `json:"p99_series,omitempty"`

	// Lag is a consumer's latest backlog in messages (nil: never reported),
	// LagSeries its value per step.
	Lag       *int64  `json:"lag,omitempty"`
	LagSeries []int64 `json:"lag_series,omitempty"`
}

// Label is how readers show the row's name: a consumer with its subject (or
// only that when it has no durable name).
func (r MetricRow) Label() string {
	switch {
	case r.Kind != MetricConsumer || r.Subject == "":
		return r.Name
	case r.Name == "":
		return r.Subject
	}
	return r.Name + " (" + r.Subject + ")"
}
