package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/services/kit/events"
)

// Headers a parked message carries besides its original ones.
const (
	HeaderDLQReason     = "Dlq-Reason"
	HeaderDLQStream     = "Dlq-Stream"
	HeaderDLQSequence   = "Dlq-Stream-Seq"
	HeaderDLQConsumer   = "Dlq-Consumer"
	HeaderDLQDeliveries = "Dlq-Deliveries"
)

// parkRetries is how many deliveries beyond MaxAttempts the server still
// makes, so that a park that failed (broker blip) gets another chance
// instead of the message silently reaching the server's MaxDeliver.
const parkRetries = 3

// Message is one decoded delivery.
type Message struct {
	Envelope events.Envelope
	Payload  any // pointer to the subject's payload type, see events.Parse
	Subject  string
	Header   nats.Header
	Delivery uint64 // 1 on first delivery
}

// Handler processes one message. nil acks it; an error naks it for a
// delayed redelivery until MaxAttempts, after which it is parked; an error
// wrapped by Permanent parks it at once.
type Handler func(ctx context.Context, m Message) error

// ConsumerConfig describes one durable consumer.
type ConsumerConfig struct {
	Stream      string
	Durable     string
	Subjects    []string      // filter subjects within Stream
	MaxAttempts int           // handler calls per message before parking; default 5
	AckWait     time.Duration // default 5s; a running handler keeps extending it
	Concurrency int           // parallel handlers; default 16
	// DeliverNew starts a consumer created for the first time at the end of
	// the stream instead of its beginning.
	DeliverNew bool
}

func (c *ConsumerConfig) defaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = 5 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
}

func (c ConsumerConfig) jetstream() jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       c.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxAttempts + parkRetries,
		MaxAckPending: c.Concurrency * 64,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if c.DeliverNew {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	if len(c.Subjects) == 1 {
		cc.FilterSubject = c.Subjects[0]
	} else {
		cc.FilterSubjects = c.Subjects
	}
	return cc
}

// Consume runs a durable consumer until ctx ends, recreating it when the
// broker is unreachable or the subscription dies. It returns nil when ctx is
// done and an error only for an invalid configuration.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) error {
	cfg.defaults()
	if cfg.Stream == "" || cfg.Durable == "" || len(cfg.Subjects) == 0 {
		return fmt.Errorf("consume: stream, durable and subjects are required")
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.consumeOnce(ctx, cfg, h)
		if ctx.Err() != nil {
			return nil
		}
		b.log.Warn("consumer stopped, retrying", "consumer", cfg.Durable, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (b *Bus) consumeOnce(ctx context.Context, cfg ConsumerConfig, h Handler) error {
	cons, err := b.js.CreateOrUpdateConsumer(ctx, cfg.Stream, cfg.jetstream())
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.Concurrency)
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b.handle(hctx, cfg, msg, h)
		}()
	}, jetstream.PullMaxMessages(cfg.Concurrency*2), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		b.log.Debug("consume", "consumer", cfg.Durable, "err", err)
	}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	select {
	case <-ctx.Done():
		cc.Stop()
	case <-cc.Closed():
	}
	// In-flight handlers finish (their context is not the caller's) so a
	// transaction is never cut halfway; acks then reach the broker.
	wg.Wait()
	return errors.New("subscription closed")
}

func (b *Bus) handle(ctx context.Context, cfg ConsumerConfig, msg jetstream.Msg, h Handler) {
	meta, err := msg.Metadata()
	if err != nil {
		b.log.Error("message without metadata", "consumer", cfg.Durable, "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	ctx = Extract(ctx, msg.Headers())
	ctx, span := otel.Tracer(tracerName).Start(ctx, "consume "+msg.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("messaging.consumer.group.name", cfg.Durable),
			attribute.Int64("messaging.nats.delivery", int64(meta.NumDelivered)),
		))
	var herr error
	defer func() { endSpan(span, herr) }()

	if meta.NumDelivered > uint64(cfg.MaxAttempts) {
		herr = fmt.Errorf("gave up after %d attempts", cfg.MaxAttempts)
		b.park(ctx, cfg, msg, meta, herr)
		return
	}
	env, payload, err := events.Parse(msg.Data())
	if err != nil {
		herr = err
		b.park(ctx, cfg, msg, meta, err)
		return
	}
	stop := keepInProgress(msg, cfg.AckWait)
	herr = h(ctx, Message{Envelope: env, Payload: payload, Subject: msg.Subject(), Header: msg.Headers(), Delivery: meta.NumDelivered})
	stop()
	switch {
	case herr == nil:
		if err := msg.Ack(); err != nil {
			// The work is committed; a redelivery is absorbed by the inbox.
			b.log.Warn("ack failed", "consumer", cfg.Durable, "subject", msg.Subject(), "err", err)
		}
	case IsPermanent(herr) || meta.NumDelivered >= uint64(cfg.MaxAttempts):
		b.park(ctx, cfg, msg, meta, herr)
	default:
		delay := min(100*time.Millisecond<<(meta.NumDelivered-1), 5*time.Second)
		b.log.Warn("handler failed, will retry", "consumer", cfg.Durable, "subject", msg.Subject(), "delivery", meta.NumDelivered, "in", delay, "err", herr)
		_ = msg.NakWithDelay(delay)
	}
}

// park republishes msg to dlq.<subject> with its headers plus the reason,
// then acks it. If the republish fails the message is nak'ed and parked on
// a later delivery, never dropped.
func (b *Bus) park(ctx context.Context, cfg ConsumerConfig, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason error) {
	out := nats.NewMsg(events.DLQPrefix + msg.Subject())
	out.Data = msg.Data()
	for k, vs := range msg.Headers() {
		for _, v := range vs {
			out.Header.Add(k, v)
		}
	}
	out.Header.Set(HeaderDLQReason, reason.Error())
	out.Header.Set(HeaderDLQStream, meta.Stream)
	out.Header.Set(HeaderDLQSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	out.Header.Set(HeaderDLQConsumer, cfg.Durable)
	out.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	// One parked copy per consumer and stream message, however often parking is retried.
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq:%s:%s:%d", cfg.Durable, meta.Stream, meta.Sequence.Stream))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := b.js.PublishMsg(pctx, out); err != nil {
		b.log.Error("park failed, will retry", "consumer", cfg.Durable, "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	b.log.Error("message parked", "consumer", cfg.Durable, "subject", msg.Subject(), "dlq", out.Subject, "reason", reason.Error())
	if err := msg.Ack(); err != nil {
		b.log.Warn("ack after park failed", "consumer", cfg.Durable, "err", err)
	}
}

// keepInProgress tells the server the message is being worked on every
// half AckWait, so a slow handler is not raced by a redelivery.
func keepInProgress(msg jetstream.Msg, ackWait time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
