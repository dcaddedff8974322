package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrInjected is the failure the fault knob produces.
var ErrInjected = errors.New("injected failure")

// Faults is the runtime knob for demonstrating breakers and compensation:
// every charge, refund and payment lookup first waits Latency and then fails
// with probability FailureRate.
type Faults struct {
	mu          sync.RWMutex
	failureRate float64
	latency     time.Duration
}

// FaultSettings is a snapshot of the knob.
type FaultSettings struct {
	FailureRate float64       `json:"failure_rate"`
	Latency     time.Duration `json:"-"`
	LatencyMS   int64         `json:"latency_ms"`
}

// Set changes the knob; rate must be within [0,1] and latency non-negative.
func (f *Faults) Set(rate float64, latency time.Duration) error {
	if rate < 0 || rate > 1 {
		return fmt.Errorf("failure_rate must be between 0 and 1, got %v", rate)
	}
	if latency < 0 || latency > time.Minute {
		return fmt.Errorf("latency must be between 0 and 1m, got %v", latency)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failureRate, f.latency = rate, latency
	return nil
}

// Get returns the current settings.
func (f *Faults) Get() FaultSettings {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return FaultSettings{FailureRate: f.failureRate, Latency: f.latency, LatencyMS: f.latency.Milliseconds()}
}

// Inject applies the knob to one operation.
func (f *Faults) Inject(ctx context.Context) error {
	s := f.Get()
	if s.Latency > 0 {
		t := time.NewTimer(s.Latency)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if s.FailureRate > 0 && rand.Float64() < s.FailureRate {
		return ErrInjected
	}
	return nil
}
