package state

import "time"

// WatchStatus is the state of the agent's source watcher (`up --watch`,
// the dashboard's toggle, GET/POST /api/watch).
type WatchStatus struct {
	On bool `json:"on"`
	// Busy is set while a change is being built and applied.
	Busy bool `json:"busy,omitempty"`
	// LastResult is the outcome of the last change, as its last event says.
	LastResult string `json:"last_result,omitempty"`
	// BuildError is the last failed build's compiler output, until a later
	// build of the same services succeeds; the old instances keep serving
	// meanwhile.
	BuildError string `json:"build_error,omitempty"`
	// Events are the most recent progress lines, oldest first, numbered
	// so that a follower prints each once.
	Events []WatchEvent `json:"events,omitempty"`
}

// WatchEvent is one progress line of the watcher.
type WatchEvent struct {
	Seq      int           `json:"seq"`
	Time     time.Time     `json:"time"`
	Services []string      `json:"services,omitempty"`
	Stage    string        `json:"stage"` // one of the Watch* stages
	Text     string        `json:"text"`
	Took     time.Duration `json:"took,omitempty"`
}

// Stages of a WatchEvent.
const (
	WatchDetected = "detected" // change detected, building
	WatchApplied  = "applied"  // built; instances replaced or nothing to do
	WatchFailed   = "failed"   // the build (or the replacement) failed
	// WatchRestartNeeded: msctl.yaml changed in a way only down and up
	// apply; watching goes on.
	WatchRestartNeeded = "restart_needed"
	WatchInfo          = "info" // watching on or off
)
