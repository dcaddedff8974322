package orchestrator

// The secret values of the services' environments (redact.Parts: tokens,
// passwords, the password of DATABASE_URL) never leave the orchestrator:
// every instance's environment is added to the logbook's Scrubber before
// the instance starts, so log lines are scrubbed as they arrive, and with
// them everything built from them (tails in errors, logs, the dashboard).

// Scrub returns text with every secret value of the services'
// environments replaced by redact.Masked.
func (o *Orchestrator) Scrub(text string) string { return o.logs.secrets.Scrub(text) }

// ScrubError returns err with its message scrubbed; errors.Is and As still
// see what it wraps. nil stays nil.
func (o *Orchestrator) ScrubError(err error) error {
	if err == nil {
		return nil
	}
	msg := o.Scrub(err.Error())
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{err: err, msg: msg}
}

type scrubbedError struct {
	err error
	msg string
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
