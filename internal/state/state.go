// Package state holds the snapshot types the agent hands to its readers.
//
// The agent is the only owner of a workspace's state; the CLI (ps, logs) and
// the dashboard only ever see these values, copied, never shared.
package state

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Component kinds.
const (
	KindInfra   = "infra"
	KindService = "service"
)

// State is the state of a component. Its values are the JSON wire values
// readers (ps --json, the dashboard) have always seen, so they must not change.
type State string

// Component states, in the order a component normally passes through them.
const (
	StateBuilding  State = "building"
	StateStarting  State = "starting"
	StateWaiting   State = "waiting" // started, waiting for readiness
	StateHealthy   State = "healthy"
	StateUnhealthy State = "unhealthy"
	StateCrashed   State = "crashed" // exited; the supervisor will restart it
	StateStopped   State = "stopped"
	// StateOrphaned is a process a dead agent left running: no agent
	// supervises it, but it still holds its port.
	StateOrphaned State = "orphaned"
)

// Snapshot is everything a reader may know about a running workspace.
type Snapshot struct {
	Workspace  string                `json:"workspace"`
	Runtime    string                `json:"runtime"`
	AgentPID   int                   `json:"agent_pid"`
	StartedAt  time.Time             `json:"started_at"`
	TakenAt    time.Time             `json:"taken_at"`
	GatewayURL string                `json:"gateway_url"`
	Components []Component           `json:"components"`
	Registry   map[string][]Instance `json:"registry"`
	Traces     []TraceSummary        `json:"traces"`
	Breakers   []Breaker             `json:"breakers"`
	Events     []Event               `json:"events"`
	// Phase is the workspace's lifecycle: starting, up, failed, stopping.
	Phase string `json:"phase,omitempty"`
	// Error says why the phase is failed.
	Error string `json:"error,omitempty"`
	// PortInUse is set when the failure is a port another process holds, so
	// readers can name the fix without parsing Error.
	PortInUse *PortConflict `json:"port_in_use,omitempty"`
	// DLQDepth is how many messages consumers gave up on and parked.
	DLQDepth uint64 `json:"dlq_depth"`
	// Deliveries are JetStream's deliveries to each consumer since the agent started; Events
	// holds publishes only.
	Deliveries []Delivery `json:"deliveries,omitempty"`
	// Export is the forwarding to an external OTLP endpoint; nil when none is set.
	Export *Export `json:"export,omitempty"`
	// Faults are the active `msctl chaos` faults, oldest first.
	Faults []Fault `json:"faults,omitempty"`
	// Watch is `up --watch`'s state (watch.go); nil when never turned on.
	Watch *WatchStatus `json:"watch,omitempty"`
}

// PortConflict is a port msctl needed and another process holds.
type PortConflict struct {
	Port   int    `json:"port"`
	Holder string `json:"holder,omitempty"` // e.g. "pid 123 (nginx)", empty when unknown
}

// Workspace phases.
const (
	PhaseStarting = "starting"
	PhaseUp       = "up"
	PhaseFailed   = "failed"
	PhaseStopping = "stopping"
)

// Component is one infra component or service.
type Component struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	State     State     `json:"state"`
	Health    string    `json:"health"` // last probe result: "ok" or the error
	Endpoint  string    `json:"endpoint"`
	PID       int       `json:"pid,omitempty"`
	Container string    `json:"container,omitempty"`
	Restarts  int       `json:"restarts"`
	Instances int       `json:"instances"`
	StartedAt time.Time `json:"started_at"`
}

// Instance is one registry entry.
type Instance struct {
	ID        string    `json:"id"`
	Service   string    `json:"service"`
	Addr      string    `json:"addr"`
	StartedAt time.Time `json:"started_at"`
}

// TraceSummary describes one trace received over OTLP.
type TraceSummary struct {
	TraceID  string        `json:"trace_id"`
	Root     string        `json:"root"` // "service: operation" of the root span
	Services []string      `json:"services"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	Spans    int           `json:"spans"`
	Errors   int           `json:"errors"`
}

// Span is one span of a trace.
type Span struct {
	TraceID  string            `json:"trace_id"`
	SpanID   string            `json:"span_id"`
	ParentID string            `json:"parent_id,omitempty"`
	Service  string            `json:"service"`
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Start    time.Time         `json:"start"`
	Duration time.Duration     `json:"duration"`
	Error    bool              `json:"error"`
	Attrs    map[string]string `json:"attrs,omitempty"`
}

// Breaker is one circuit breaker of one service, as served at /debug/breakers.
// The wire shape of that endpoint is declared once, in services/kit/breakers;
// state imports no other package of the project, so it keeps this snapshot
// type of its own and the agent converts each entry once, when it polls.
type Breaker struct {
	Service             string    `json:"service"`
	Name                string    `json:"name"`  // the upstream it guards
	State               string    `json:"state"` // closed, open, half-open
	Requests            uint32    `json:"requests"`
	TotalSuccesses      uint32    `json:"total_successes"`
	TotalFailures       uint32    `json:"total_failures"`
	ConsecutiveFailures uint32    `json:"consecutive_failures"`
	OpenUntil           time.Time `json:"open_until,omitzero"`
}

// LogLine is one line of a component's output.
type LogLine struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Stream  string    `json:"stream"` // stdout or stderr
	Level   string    `json:"level,omitempty"`
	Text    string    `json:"text"`
}

// LogQuery selects log lines: what `msctl logs` and the dashboard ask the
// agent for, and what the orchestrator answers from the lines it keeps. The
// zero value selects every kept line. The grep is compiled where the user's
// text comes in (the CLI flag, the agent's API), so an invalid one fails
// there and never reaches a reader.
type LogQuery struct {
	Services []string       // empty: all
	Grep     *regexp.Regexp // matched against the text; nil: all
	Since    time.Time      // zero: all
	// Follow keeps delivering new lines until the reader's context ends.
	Follow bool
}

// Ago is the Since of a query for the lines of the last d; 0 (or less)
// selects every kept line.
func Ago(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(-d)
}

// Match reports whether q selects l.
func (q LogQuery) Match(l LogLine) bool {
	if len(q.Services) > 0 && !slices.Contains(q.Services, l.Service) {
		return false
	}
	if !q.Since.IsZero() && l.Time.Before(q.Since) {
		return false
	}
	return q.Grep == nil || q.Grep.MatchString(l.Text)
}

// Change is what applying msctl.yaml to a running workspace (msctl up
// while an agent runs) did to one service.
type Change struct {
	Service string `json:"service"`
	// What happened and why: "code changed, restarted", "env changed,
	// restarted", "scaled 3 → 1".
	What string `json:"what"`
}

// Event is one broker message seen by the agent.
type Event struct {
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	Stream  string    `json:"stream"`
	MsgID   string    `json:"msg_id"`
	Size    int       `json:"size"`
}

// Delivery counts what JetStream delivered to one consumer: Delivered first attempts,
// Redelivered later ones (naks, ack timeouts).
type Delivery struct {
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	Delivered   uint64 `json:"delivered"`
	Redelivered uint64 `json:"redelivered"`
}

// DLQMessage is one message a consumer gave up on, parked in the DLQ stream.
type DLQMessage struct {
	ID        uint64              `json:"id"`      // its sequence in the DLQ stream
	Subject   string              `json:"subject"` // the subject it was published on
	Reason    string              `json:"reason"`
	Stream    string              `json:"stream"`     // the stream it was consumed from
	StreamSeq uint64              `json:"stream_seq"` // its sequence there
	Consumer  string              `json:"consumer"`   // the durable that parked it
	Attempts  int                 `json:"attempts"`   // handler runs that failed
	ParkedAt  time.Time           `json:"parked_at"`
	Headers   map[string][]string `json:"headers,omitempty"` // only when one message is asked for
	// Payload is the message's body as sent (a poison message's may not be
	// JSON at all); only when one message is asked for.
	Payload string `json:"payload,omitempty"`
}

// DLQOutcome is what a replay or drop of parked messages did, id by id.
type DLQOutcome struct {
	Done   []uint64     `json:"done"`
	Failed []DLQFailure `json:"failed,omitempty"`
}

// DLQFailure is a parked message a replay or drop could not handle, and why.
type DLQFailure struct {
	ID    uint64 `json:"id"`
	Error string `json:"error"`
}

// LevelOf reads the level of a JSON log line (slog's "level" key, what
// services/kit writes), so readers can colour and filter without parsing
// every line themselves. Other lines have no level.
func LevelOf(line string) string {
	if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"level"`) {
		return ""
	}
	var v struct {
		Level string `json:"level"`
	}
	if json.Unmarshal([]byte(line), &v) != nil {
		return ""
	}
	return strings.ToLower(v.Level)
}
