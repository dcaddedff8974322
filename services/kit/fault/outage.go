package fault

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Backoff bounds of an Outage: the first retry comes soon (a blip), later
// ones every few seconds, so a long outage costs one probe per MaxBackoff.
const (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 3 * time.Second
)

// Outage tracks whether a loop is held up by an unavailable dependency. It
// logs one warning when the loop pauses and one when it resumes, however
// many failures come in between, and hands out a backoff that grows to
// MaxBackoff. The zero value is not usable; see NewOutage.
type Outage struct {
	log   *slog.Logger
	what  string
	probe chan struct{} // held by the one caller that tries while paused

	mu      sync.Mutex
	since   time.Time // zero while not paused
	err     error     // the last transient error
	backoff time.Duration
}

// NewOutage returns a tracker for the loop named what (e.g. "consumer
// payments") logging to log.
func NewOutage(log *slog.Logger, what string) *Outage {
	if log == nil {
		log = slog.Default()
	}
	return &Outage{log: log, what: what, probe: make(chan struct{}, 1)}
}

// Fail records a transient failure and returns how long to wait before the
// next try.
func (o *Outage) Fail(err error) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.err = err
	if o.since.IsZero() {
		o.since = time.Now()
		o.backoff = MinBackoff
		o.log.Warn(o.what+" paused", "err", err)
		return o.backoff
	}
	o.backoff = min(2*o.backoff, MaxBackoff)
	return o.backoff
}

// OK records a success; it ends the outage, if any.
func (o *Outage) OK() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return
	}
	o.log.Warn(o.what+" resumed", "after", time.Since(o.since).Round(time.Millisecond).String(), "last_err", o.err)
	o.since, o.err = time.Time{}, nil
}

// Paused reports whether the loop is in an outage, and the backoff to wait
// before the next try if so.
func (o *Outage) Paused() (bool, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.since.IsZero(), o.backoff
}

// Err is nil unless the outage has lasted longer than grace, so that a
// readiness check does not flap on a single serialization failure.
func (o *Outage) Err(grace time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() || time.Since(o.since) < grace {
		return nil
	}
	return fmt.Errorf("%s paused for %s: %w", o.what, time.Since(o.since).Round(time.Second), o.err)
}

// Admit lets a caller (one of the loop's workers) try its work: at once
// while there is no outage; during one, one caller at a time (the probe),
// after the current backoff, so that a dead dependency sees one try per
// backoff instead of one per worker, and a worker that finds nothing to do
// cannot end the outage while another one's work is failing. leave must
// be called when the try is over; ok is false when done closed first.
func (o *Outage) Admit(done <-chan struct{}) (leave func(), ok bool) {
	for {
		paused, backoff := o.Paused()
		if !paused {
			return func() {}, true
		}
		select {
		case o.probe <- struct{}{}:
			leave := func() { <-o.probe }
			select {
			case <-time.After(backoff):
				return leave, true
			case <-done:
				leave()
				return nil, false
			}
		case <-time.After(backoff): // the outage may be over: look again
		case <-done:
			return nil, false
		}
	}
}
