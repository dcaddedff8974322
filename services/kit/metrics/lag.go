package metrics

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// lagRefresh is the youngest a cached lag may be before a collection asks the broker again:
// under the export interval, so every periodic export sees a fresh value, while a scrape of
// /metrics right after it reuses the value instead of costing another round trip.
const lagRefresh = time.Second

// lagTimeout bounds the broker round trips of one collection, all consumers together.
const lagTimeout = time.Second

// LagFunc asks the broker how many messages a consumer has not yet had delivered or acknowledged.
type LagFunc func(ctx context.Context) (int64, error)

type lagSource struct {
	fn  LagFunc
	opt metric.ObserveOption

	mu    sync.Mutex
	value int64
	at    time.Time // when value was read; zero until the first successful read
}

var (
	lagMu      sync.Mutex
	lagSources = map[*lagSource]struct{}{}
)

// TrackLag reports the lag of the durable consumer group on stream as messaging.consumer.lag
// until untrack is called. fn runs at most once per collection (and not more often than
// lagRefresh), never per message.
func TrackLag(stream, group string, fn LagFunc) (untrack func()) {
	src := &lagSource{fn: fn, opt: metric.WithAttributeSet(attribute.NewSet(
		attribute.String(AttrGroup, group), attribute.String(AttrDestination, stream)))}
	lagMu.Lock()
	lagSources[src] = struct{}{}
	lagMu.Unlock()
	return func() {
		lagMu.Lock()
		delete(lagSources, src)
		lagMu.Unlock()
	}
}

// observeLag refreshes the stale lags and observes every consumer whose lag could be read; a
// consumer the broker does not answer for is left out rather than shown with an old value.
func observeLag(ctx context.Context, observe func(int64, metric.ObserveOption)) {
	lagMu.Lock()
	srcs := make([]*lagSource, 0, len(lagSources))
	for s := range lagSources {
		srcs = append(srcs, s)
	}
	lagMu.Unlock()
	if len(srcs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lagTimeout)
	defer cancel()
	for _, s := range srcs {
		if v, ok := s.read(ctx); ok {
			observe(v, s.opt)
		}
	}
}

func (s *lagSource) read(ctx context.Context) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.at.IsZero() && time.Since(s.at) < lagRefresh {
		return s.value, true
	}
	v, err := s.fn(ctx)
	if err != nil {
		return 0, false
	}
	s.value, s.at = v, time.Now()
	return v, true
}
