package client

import (
	"sort"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	wire "github.com/msctl/msctl/services/kit/breakers"
)

// BreakerStatus is one entry of GET /debug/breakers; the shape is declared
// in kit/breakers so that msctl's agent decodes the same type.
type BreakerStatus = wire.Status

// breaker pairs a gobreaker with the moment it may turn half-open, which gobreaker does not expose.
type breaker struct {
	cb      *gobreaker.CircuitBreaker[any]
	timeout time.Duration

	mu        sync.Mutex
	openUntil time.Time
}

func (b *breaker) onStateChange(to gobreaker.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if to == gobreaker.StateOpen {
		b.openUntil = time.Now().Add(b.timeout).UTC()
	} else {
		b.openUntil = time.Time{}
	}
}

func (b *breaker) status() BreakerStatus {
	// State() first: it advances an expired open breaker to half-open.
	state := b.cb.State()
	c := b.cb.Counts()
	st := BreakerStatus{
		Name:                 b.cb.Name(),
		State:                state.String(),
		Requests:             c.Requests,
		TotalSuccesses:       c.TotalSuccesses,
		TotalFailures:        c.TotalFailures,
		ConsecutiveSuccesses: c.ConsecutiveSuccesses,
		ConsecutiveFailures:  c.ConsecutiveFailures,
	}
	if state == gobreaker.StateOpen {
		b.mu.Lock()
		if !b.openUntil.IsZero() {
			t := b.openUntil
			st.OpenUntil = &t
		}
		b.mu.Unlock()
	}
	return st
}

// The process-wide set of breakers, so /debug/breakers sees every upstream of the service.
var (
	breakersMu sync.Mutex
	breakers   = map[string]*breaker{}
)

func track(b *breaker) {
	breakersMu.Lock()
	defer breakersMu.Unlock()
	breakers[b.cb.Name()] = b
}

// Breakers returns the state of every breaker of this process, sorted by name.
func Breakers() []BreakerStatus {
	breakersMu.Lock()
	list := make([]*breaker, 0, len(breakers))
	for _, b := range breakers {
		list = append(list, b)
	}
	breakersMu.Unlock()
	out := make([]BreakerStatus, 0, len(list))
	for _, b := range list {
		out = append(out, b.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
