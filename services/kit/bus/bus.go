// Package bus is the shop's JetStream plumbing: the streams, publishing with
// a dedup id and trace headers, and durable consumers with explicit acks,
// bounded attempts (an unavailable dependency is waited out, see
// kit/fault) and a dead-letter ("parked") stream for poison messages.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/fault"
)

// DedupWindow is how long a stream remembers a Nats-Msg-Id. A relay that
// crashed between publish and mark republishes well within it.
const DedupWindow = 2 * time.Minute

// Headers set on every message. Traceparent is the W3C header name.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

const tracerName = "github.com/msctl/msctl/services/kit/bus"

// propagator is fixed to W3C trace context so trace continuity does not
// depend on whether the process configured a global propagator.
var propagator = propagation.TraceContext{}

// Bus wraps a JetStream context over one NATS connection.
type Bus struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger

	mu        sync.Mutex
	consumers map[string]*fault.Outage // by durable name, while consuming
}

// New builds a Bus on an established connection.
func New(nc *nats.Conn, log *slog.Logger) (*Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Bus{nc: nc, js: js, log: log, consumers: map[string]*fault.Outage{}}, nil
}

// JetStream exposes the underlying context for callers that need more.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// StreamConfig is the configuration EnsureStreams applies to a stream:
// file storage, dedup window, retention by limits so the order events can
// be replayed to rebuild a read model, and atomic batches allowed.
func StreamConfig(name string) (jetstream.StreamConfig, error) {
	subjects, ok := events.StreamSubjects[name]
	if !ok {
		return jetstream.StreamConfig{}, fmt.Errorf("unknown stream %q", name)
	}
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   subjects,
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Duplicates: DedupWindow,
		Discard:    jetstream.DiscardOld,
		MaxBytes:   1 << 30,
		// See PublishBatch: one disk sync for a whole batch.
		AllowAtomicPublish: true,
	}, nil
}

// EnsureStreams creates or updates every stream of the shop. It is
// idempotent, so every service calls it at start.
func (b *Bus) EnsureStreams(ctx context.Context) error {
	for _, name := range slices.Sorted(maps.Keys(events.StreamSubjects)) {
		cfg, err := StreamConfig(name)
		if err != nil {
			return err
		}
		if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", name, err)
		}
	}
	return nil
}

// NewMsg builds a message for subject whose Nats-Msg-Id is id. hdr (may be
// nil) is copied; trace headers from ctx are added when hdr carries none.
func NewMsg(ctx context.Context, subject, id string, data []byte, hdr nats.Header) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	for k, vs := range hdr {
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	if m.Header.Get(HeaderTraceparent) == "" {
		Inject(ctx, m.Header)
	}
	m.Header.Set(jetstream.MsgIDHeader, id)
	return m
}

// Publish sends one envelope and waits for the stream's ack.
func (b *Bus) Publish(ctx context.Context, env events.Envelope, data []byte) error {
	_, err := b.js.PublishMsg(ctx, NewMsg(ctx, env.Subject, env.ID, data, nil))
	if err != nil {
		return fmt.Errorf("publish %s: %w", env.Subject, err)
	}
	return nil
}

// Inject writes the span context of ctx into h as W3C trace headers.
func Inject(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, headerCarrier(h))
}

// Extract returns ctx carrying the remote span context found in h.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return propagator.Extract(ctx, headerCarrier(h))
}

// headerCarrier adapts nats.Header to the propagation API. NATS headers
// keep the key's case, so traceparent is written and read in lower case.
type headerCarrier nats.Header

var _ propagation.TextMapCarrier = headerCarrier(nil)

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// StartPublishSpan starts a producer span for subject as a child of ctx.
func StartPublishSpan(ctx context.Context, subject string) (context.Context, trace.Span) {
	return otel.Tracer(tracerName).Start(ctx, "publish "+subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", subject)))
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Permanent wraps err so the consumer parks the message at once instead of
// retrying it (see fault.Permanent).
func Permanent(err error) error { return fault.Permanent(err) }

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool { return fault.IsPermanent(err) }

// stallGrace is how long a consumer may wait out a dependency before
// Healthy reports it: a single serialization failure is no outage.
const stallGrace = 2 * time.Second

// Healthy is nil unless a consumer of this bus has been paused by an
// unavailable dependency for longer than stallGrace. kit adds it to the
// readiness checks, so an instance whose consumers are stuck is unready
// (and leaves the registry) until they resume by themselves.
func (b *Bus) Healthy(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(b.consumers)) {
		errs = append(errs, b.consumers[name].Err(stallGrace))
	}
	return errors.Join(errs...)
}

// track registers the outage tracker of a running consumer for Healthy.
func (b *Bus) track(durable string, o *fault.Outage) (untrack func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.consumers[durable] = o
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.consumers, durable)
	}
}
