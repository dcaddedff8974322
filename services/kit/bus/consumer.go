package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/fault"
	"github.com/msctl/msctl/services/kit/metrics"
)

// Headers a parked message carries besides its original ones.
const (
	HeaderDLQReason     = "Dlq-Reason"
	HeaderDLQStream     = "Dlq-Stream"
	HeaderDLQSequence   = "Dlq-Stream-Seq"
	HeaderDLQConsumer   = "Dlq-Consumer"
	HeaderDLQDeliveries = "Dlq-Deliveries"
	HeaderDLQAttempts   = "Dlq-Attempts"
)

// Message is one decoded delivery.
type Message struct {
	Envelope events.Envelope
	Payload  any // pointer to the subject's payload type, see events.Parse
	Subject  string
	Header   nats.Header
	Delivery uint64 // 1 on first delivery

	ctx context.Context // the message's consumer span; see Context
}

// Context returns parent carrying the message's consumer span (a child of
// the trace the message arrived with), so that work done for the message,
// and messages it causes, continue that trace. A Message built by hand has
// no span of its own and returns parent unchanged.
func (m Message) Context(parent context.Context) context.Context {
	if m.ctx == nil {
		return parent
	}
	return trace.ContextWithSpan(parent, trace.SpanFromContext(m.ctx))
}

// Handler processes one message. nil acks it. An error wrapped by
// Permanent parks it at once. A transient error (fault.Transient: a
// dependency is unavailable) naks it without using an attempt and pauses
// the consumer until a handler succeeds again, however long that takes.
// Any other error, and a run cut at HandlerTimeout, uses one of the
// message's MaxAttempts; the last one parks it.
type Handler func(ctx context.Context, m Message) error

// BatchHandler processes the messages that arrived together, so that their
// work can share one database transaction. It returns one error per message,
// in order, each treated as Handler's error is.
type BatchHandler func(ctx context.Context, ms []Message) []error

// ConsumerConfig describes one durable consumer.
type ConsumerConfig struct {
	Stream   string
	Durable  string
	Subjects []string // filter subjects within Stream
	// MaxAttempts is how many handler runs may fail (other than
	// transiently) before the message is parked; default 5.
	MaxAttempts int
	AckWait     time.Duration // default 5s; a running handler keeps extending it
	// HandlerTimeout bounds one handler call; default 30s. Its context
	// ends then, the message stops being kept in progress and the run
	// counts as a failed attempt.
	HandlerTimeout time.Duration
	// Concurrency is how many handler calls run at once; default 16.
	Concurrency int
	// Batch is the most messages one BatchHandler call receives (it gets
	// what has arrived, without waiting for more); default 1. Consume
	// always calls its Handler with one message.
	Batch int
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
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = 30 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
}

// buffered is how many delivered messages wait for a handler: enough for
// every handler to take a full batch while the next ones are pulled.
func (c ConsumerConfig) buffered() int { return 2 * c.Concurrency * c.Batch }

func (c ConsumerConfig) jetstream() jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:   c.Durable,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   c.AckWait,
		// Unlimited: the consumer counts attempts itself (consumerState)
		// and parks, so the server never drops a message on its own.
		MaxDeliver:    -1,
		MaxAckPending: max(c.Concurrency*64, 2*c.buffered()),
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

// Consume runs a durable consumer until ctx ends, calling h for one message
// at a time per handler slot (cfg.Batch is ignored). It recreates the
// consumer when the broker is unreachable or the subscription dies, returns
// nil when ctx is done and an error only for an invalid configuration.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) error {
	cfg.Batch = 1
	return b.ConsumeBatch(ctx, cfg, func(ctx context.Context, ms []Message) []error {
		return []error{h(ms[0].Context(ctx), ms[0])}
	})
}

// ConsumeBatch is Consume with handlers that receive up to cfg.Batch
// messages per call.
func (b *Bus) ConsumeBatch(ctx context.Context, cfg ConsumerConfig, h BatchHandler) error {
	cfg.defaults()
	if cfg.Stream == "" || cfg.Durable == "" || len(cfg.Subjects) == 0 {
		return fmt.Errorf("consume: stream, durable and subjects are required")
	}
	c := newConsumerState(fault.NewOutage(b.log.With("consumer", cfg.Durable), "consumer "+cfg.Durable))
	defer b.track(cfg.Durable, c.outage)()
	// A consumer that cannot (re)subscribe is as stuck as one whose handler
	// waits: both count for Healthy.
	sub := fault.NewOutage(b.log.With("consumer", cfg.Durable), "subscription of consumer "+cfg.Durable)
	defer b.track(cfg.Durable+" subscription", sub)()
	for ctx.Err() == nil {
		err := b.consumeOnce(ctx, cfg, c, sub, h)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sub.Fail(err)):
		}
	}
	return nil
}

func (b *Bus) consumeOnce(ctx context.Context, cfg ConsumerConfig, c *consumerState, sub *fault.Outage, h BatchHandler) error {
	cons, err := b.js.CreateOrUpdateConsumer(ctx, cfg.Stream, cfg.jetstream())
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	sub.OK()
	defer metrics.TrackLag(cfg.Stream, cfg.Durable, consumerLag(cons))()
	// In-flight handlers finish (their context is not the caller's) so a
	// transaction is never cut halfway; acks then reach the broker.
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	in := make(chan jetstream.Msg, cfg.buffered())
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for {
				select {
				case <-stopped:
					return
				case msg := <-in:
					batch := takeBatch(msg, in, cfg.Batch)
					if !b.admit(hctx, cfg, c, batch, h, stopped) {
						return
					}
				}
			}
		})
	}
	defer wg.Wait()
	defer close(stopped)
	// Messages still buffered when consuming stops are not acked: the
	// server redelivers them after AckWait.
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case in <- msg:
		case <-stopped:
		}
	}, jetstream.PullMaxMessages(cfg.buffered()), jetstream.PullExpiry(pullExpiry), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
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
	return errors.New("subscription closed")
}

// pullExpiry bounds each pull request. The broker keeps serving the pull
// request of an instance that was killed until it expires: every message
// it hands there comes back only after AckWait. With the library's default
// of 30 s, orders waited in AckWait steps up to 30 s after a consumer was
// SIGKILLed (p99 accept→final 30.2 s in TestDurability/kill-inventory);
// with 2 s, 5.0 s. The price is one pull request per consumer every 2 s.
const pullExpiry = 2 * time.Second

// takeBatch returns first plus whatever else is already waiting in in, up
// to n messages in all.
func takeBatch(first jetstream.Msg, in <-chan jetstream.Msg, n int) []jetstream.Msg {
	batch := []jetstream.Msg{first}
	for len(batch) < n {
		select {
		case msg := <-in:
			batch = append(batch, msg)
		default:
			return batch
		}
	}
	return batch
}

// admit hands batch to the handler once the consumer's outage lets the
// slot through (see fault.Outage.Admit: one slot at a time while a
// dependency is down), keeping the batch in progress while it waits so
// that the server does not redeliver it meanwhile. It reports false when
// the consumer stopped first: the batch is then redelivered after AckWait.
func (b *Bus) admit(ctx context.Context, cfg ConsumerConfig, c *consumerState, batch []jetstream.Msg, h BatchHandler, stopped <-chan struct{}) bool {
	stop := keepInProgress(batch, cfg.AckWait)
	leave, ok := c.outage.Admit(stopped)
	stop()
	if !ok {
		return false
	}
	defer leave()
	b.handle(ctx, cfg, c, batch, h)
	return true
}

// delivery is one message of a batch on its way through the handler.
type delivery struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	ctx  context.Context
	span trace.Span
}

func (b *Bus) handle(ctx context.Context, cfg ConsumerConfig, c *consumerState, batch []jetstream.Msg, h BatchHandler) {
	ds := make([]delivery, 0, len(batch))
	ms := make([]Message, 0, len(batch))
	msgs := make([]jetstream.Msg, 0, len(batch))
	for _, msg := range batch {
		d, m, ok := b.prepare(ctx, cfg, c, msg)
		if ok {
			ds, ms, msgs = append(ds, d), append(ms, m), append(msgs, msg)
		}
	}
	if len(ms) == 0 {
		return
	}
	start := time.Now()
	errs, finished := b.call(ctx, cfg, msgs, ms, h)
	took := time.Since(start)
	var backoff time.Duration
	if i := slices.IndexFunc(errs, fault.Transient); i >= 0 {
		backoff = c.outage.Fail(errs[i])
	} else {
		c.outage.OK() // the handler got answers from its dependencies
	}
	for i, d := range ds {
		// Each message of a batch took the whole handler call. Recorded before settling, so that
		// whoever sees the ack or the parked copy also sees the run.
		metrics.Process(d.ctx, d.msg.Subject(), cfg.Durable, errorType(errs[i]), took)
		b.settle(d, cfg, c, errs[i], backoff)
		endSpan(d.span, errs[i])
	}
	// A handler that ignores its context keeps its slot until it returns,
	// so that no more handlers run than Concurrency allows.
	<-finished
}

// call runs h on ms within cfg.HandlerTimeout, keeping the messages in
// progress meanwhile. At the deadline every message gets a timeout error
// (a failed attempt, whatever the handler answers later); finished is
// closed when h has returned.
func (b *Bus) call(ctx context.Context, cfg ConsumerConfig, msgs []jetstream.Msg, ms []Message, h BatchHandler) (errs []error, finished <-chan struct{}) {
	hctx, cancel := context.WithTimeout(ctx, cfg.HandlerTimeout)
	stop := keepInProgress(msgs, cfg.AckWait)
	defer stop()
	result := make(chan []error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		result <- h(hctx, ms)
	}()
	timer := time.NewTimer(cfg.HandlerTimeout)
	defer timer.Stop()
	timedOut := false
	select {
	case errs = <-result:
		if !errors.Is(hctx.Err(), context.DeadlineExceeded) && len(errs) == len(ms) {
			return errs, done
		}
	case <-timer.C:
		timedOut = true
	}
	err := fmt.Errorf("handler of %s answered %d results for %d messages", cfg.Durable, len(errs), len(ms))
	if timedOut || errors.Is(hctx.Err(), context.DeadlineExceeded) {
		// The handler's own context ended it, not a dependency: its
		// DeadlineExceeded must not read as a transient failure.
		err = timeoutError{cfg.HandlerTimeout}
	}
	b.log.Error("handler failed", "consumer", cfg.Durable, "err", err)
	errs = make([]error, len(ms))
	for i := range errs {
		errs[i] = err
	}
	return errs, done
}

// prepare starts the message's consumer span and decodes it; a message that
// used up its attempts or does not decode is parked and not handed on.
func (b *Bus) prepare(ctx context.Context, cfg ConsumerConfig, c *consumerState, msg jetstream.Msg) (delivery, Message, bool) {
	meta, err := msg.Metadata()
	if err != nil {
		b.log.Error("message without metadata", "consumer", cfg.Durable, "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return delivery{}, Message{}, false
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
	d := delivery{msg: msg, meta: meta, ctx: ctx, span: span}
	// Only a park that failed (the broker blinked) brings a message with
	// its attempts used up back here.
	if n := c.attempted(meta.Sequence.Stream); n >= cfg.MaxAttempts {
		err := fmt.Errorf("gave up after %d attempts", n)
		b.park(ctx, cfg, c, msg, meta, err)
		endSpan(span, err)
		return delivery{}, Message{}, false
	}
	env, payload, err := events.Parse(msg.Data())
	if err != nil {
		b.park(ctx, cfg, c, msg, meta, err)
		endSpan(span, err)
		return delivery{}, Message{}, false
	}
	return d, Message{Envelope: env, Payload: payload, Subject: msg.Subject(), Header: msg.Headers(), Delivery: meta.NumDelivered, ctx: ctx}, true
}

// settle acks, naks or parks a handled message according to its handler's
// error; backoff is the consumer's pause when a handler failed transiently.
func (b *Bus) settle(d delivery, cfg ConsumerConfig, c *consumerState, herr error, backoff time.Duration) {
	msg, meta := d.msg, d.meta
	switch {
	case herr == nil:
		c.forget(meta.Sequence.Stream)
		if err := msg.Ack(); err != nil {
			// The work is committed; a redelivery is absorbed by the inbox.
			b.log.Warn("ack failed", "consumer", cfg.Durable, "subject", msg.Subject(), "err", err)
		}
	case IsPermanent(herr):
		c.fail(meta.Sequence.Stream)
		b.park(d.ctx, cfg, c, msg, meta, herr)
	case fault.Transient(herr):
		// Not an attempt: the message waits with the consumer (logged once
		// by the outage, not per message).
		_ = msg.NakWithDelay(backoff)
	default:
		n := c.fail(meta.Sequence.Stream)
		if n >= cfg.MaxAttempts {
			b.park(d.ctx, cfg, c, msg, meta, herr)
			return
		}
		delay := min(100*time.Millisecond<<(n-1), 5*time.Second)
		b.log.Warn("handler failed, will retry", "consumer", cfg.Durable, "subject", msg.Subject(), "attempt", n, "in", delay, "err", herr)
		_ = msg.NakWithDelay(delay)
	}
}

// park republishes msg to dlq.<subject> with its headers plus the reason,
// then acks it. If the republish fails the message is nak'ed and parked on
// a later delivery, never dropped.
func (b *Bus) park(ctx context.Context, cfg ConsumerConfig, c *consumerState, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason error) {
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
	// Attempts are the handler runs that failed (0 for a payload that did
	// not decode); deliveries also count waits through an outage.
	out.Header.Set(HeaderDLQAttempts, strconv.Itoa(c.attempted(meta.Sequence.Stream)))
	// One parked copy per consumer and stream message, however often parking is retried.
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq:%s:%s:%d", cfg.Durable, meta.Stream, meta.Sequence.Stream))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := b.js.PublishMsg(pctx, out); err != nil {
		b.log.Error("park failed, will retry", "consumer", cfg.Durable, "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	c.forget(meta.Sequence.Stream)
	b.log.Error("message parked", "consumer", cfg.Durable, "subject", msg.Subject(), "dlq", out.Subject, "reason", reason.Error())
	if err := msg.Ack(); err != nil {
		b.log.Warn("ack after park failed", "consumer", cfg.Durable, "err", err)
	}
}

// keepInProgress tells the server the messages are being worked on every
// half AckWait, so a slow handler is not raced by a redelivery.
func keepInProgress(msgs []jetstream.Msg, ackWait time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
}
