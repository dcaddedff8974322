package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/services/kit/events"
)

// Parked is one message in the DLQ stream, as park left it.
type Parked struct {
	Seq        uint64 // its sequence in the DLQ stream: the id users name it by
	Subject    string // the subject it was published on, without the DLQ prefix
	Reason     string
	Stream     string // the stream it was consumed from
	StreamSeq  uint64 // its sequence there
	Consumer   string // the durable that gave up on it
	Deliveries int    // how often that consumer had received it
	Attempts   int    // how often its handler ran and failed (see settle)
	ParkedAt   time.Time
	Header     nats.Header // every header, the Dlq-* ones included
	Data       []byte      // nil when listed: List reads headers only
}

// ErrNotParked means no message with that id is in the DLQ (any more).
var ErrNotParked = errors.New("no such parked message")

// ErrConsumerGone means the consumer that parked a message no longer
// exists, so a replay would reach no one who failed it.
var ErrConsumerGone = errors.New("the consumer that parked it no longer exists")

// ParkedMessages lists the parked messages, oldest first; subject (a
// subject or a wildcard of the original subjects, empty for all) narrows
// them. It reads headers only, through an ephemeral ordered consumer, so it
// stays cheap however large the payloads are.
func (b *Bus) ParkedMessages(ctx context.Context, subject string) ([]Parked, error) {
	filter := events.DLQPrefix + ">"
	if subject != "" {
		filter = events.DLQPrefix + subject
	}
	cons, err := b.js.OrderedConsumer(ctx, events.StreamDLQ, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: true})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil // no service has run yet: nothing was parked
	}
	if err != nil {
		return nil, fmt.Errorf("list the DLQ: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the DLQ: %w", err)
	}
	var out []Parked
	for pending := info.NumPending; pending > 0; {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		// Asking for more than is pending would wait for messages that may never come.
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("list the DLQ: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				cancel()
				return nil, fmt.Errorf("list the DLQ: %w", err)
			}
			out = append(out, parked(meta.Sequence.Stream, msg.Subject(), meta.Timestamp, msg.Headers(), nil))
			got++
		}
		cancel()
		if got == 0 {
			return nil, fmt.Errorf("list the DLQ: no messages while %d pending: %w", pending, batch.Error())
		}
		pending -= uint64(min(uint64(got), pending))
	}
	return out, nil
}

// ParkedMessage returns one parked message with its payload.
func (b *Bus) ParkedMessage(ctx context.Context, seq uint64) (Parked, error) {
	s, err := b.js.Stream(ctx, events.StreamDLQ)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Parked{}, fmt.Errorf("%w: %d", ErrNotParked, seq)
	}
	if err != nil {
		return Parked{}, fmt.Errorf("read the DLQ: %w", err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Parked{}, fmt.Errorf("%w: %d", ErrNotParked, seq)
	}
	if err != nil {
		return Parked{}, fmt.Errorf("read DLQ message %d: %w", seq, err)
	}
	return parked(m.Sequence, m.Subject, m.Time, m.Header, m.Data), nil
}

func parked(seq uint64, subject string, at time.Time, h nats.Header, data []byte) Parked {
	streamSeq, _ := strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	deliveries, _ := strconv.Atoi(h.Get(HeaderDLQDeliveries))
	attempts, err := strconv.Atoi(h.Get(HeaderDLQAttempts))
	if err != nil { // parked before attempts were counted apart
		attempts = deliveries
	}
	return Parked{
		Seq: seq, Subject: strings.TrimPrefix(subject, events.DLQPrefix), ParkedAt: at,
		Reason: h.Get(HeaderDLQReason), Stream: h.Get(HeaderDLQStream), StreamSeq: streamSeq,
		Consumer: h.Get(HeaderDLQConsumer), Deliveries: deliveries, Attempts: attempts, Header: h, Data: data,
	}
}

// ReplayParked delivers a parked message to the consumer that parked it
// again, then removes it from the DLQ.
//
// The message goes back to its original subject with its payload and
// headers (trace context included) minus the Dlq-* ones, so its consumer
// receives it as a new message of its stream. It needs a fresh Nats-Msg-Id:
// the stream would drop the original id as a duplicate within DedupWindow.
// The fresh id is derived from the DLQ entry, so a replay retried after the
// publish succeeded but the delete failed is still stored once. Every other
// consumer of that subject receives it too; they applied it the first time,
// and their inbox (keyed by the envelope id, which is unchanged) absorbs it.
func (b *Bus) ReplayParked(ctx context.Context, seq uint64) error {
	p, err := b.ParkedMessage(ctx, seq)
	if err != nil {
		return err
	}
	if p.Stream == "" || p.Consumer == "" {
		return fmt.Errorf("DLQ message %d names no stream or consumer: it was not parked by a consumer", seq)
	}
	if _, err := b.js.Consumer(ctx, p.Stream, p.Consumer); errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("DLQ message %d: %w (consumer %s on stream %s); drop it instead", seq, ErrConsumerGone, p.Consumer, p.Stream)
	} else if err != nil {
		return fmt.Errorf("DLQ message %d: look up consumer %s: %w", seq, p.Consumer, err)
	}
	out := nats.NewMsg(p.Subject)
	out.Data = p.Data
	for k, vs := range p.Header {
		// Dlq-* describe the parking; Nats-* are instructions to the server
		// (the old id, batch or expectation headers) that must not apply twice.
		if strings.HasPrefix(k, "Dlq-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		out.Header[k] = append([]string(nil), vs...)
	}
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq-replay:%s:%s:%d:%d", p.Consumer, p.Stream, p.StreamSeq, seq))
	if _, err := b.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("replay DLQ message %d to %s: %w", seq, p.Subject, err)
	}
	if err := b.DropParked(ctx, seq); err != nil {
		return fmt.Errorf("replayed DLQ message %d but could not remove it: %w", seq, err)
	}
	return nil
}

// DropParked deletes a parked message for good.
func (b *Bus) DropParked(ctx context.Context, seq uint64) error {
	// The delete API answers a missing message with a bare failure, so
	// look first: a wrong id gets ErrNotParked.
	if _, err := b.ParkedMessage(ctx, seq); err != nil {
		return err
	}
	s, err := b.js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		return fmt.Errorf("drop DLQ message %d: %w", seq, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("drop DLQ message %d: %w", seq, err)
	}
	return nil
}

// DLQDepth is how many messages are parked: one stream info request.
func (b *Bus) DLQDepth(ctx context.Context) (uint64, error) {
	s, err := b.js.Stream(ctx, events.StreamDLQ)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.Msgs, nil
}
