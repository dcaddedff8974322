package state

// Export is how the agent's forwarding of OTLP to an external endpoint
// (observability.export in msctl.yaml, --otlp-export) fares.
type Export struct {
	URL string `json:"url"`
	// Sent counts export requests the endpoint accepted; Dropped those given
	// up on (the queue was full, retries ran out, or the endpoint refused
	// them); Queued those waiting.
	Sent    uint64 `json:"sent"`
	Dropped uint64 `json:"dropped"`
	Queued  int    `json:"queued"`
	// LastError is the last failure, with its time; empty when none yet.
	LastError string `json:"last_error,omitempty"`
}
