package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/services/kit/events"
)

// Replay feeds fn every message of stream matching subjects, oldest first,
// up to the last one stored when Replay started, and returns how many it
// fed. It reads through an ephemeral ordered consumer, so durable consumers
// are not disturbed. A message that does not decode stops the replay: a
// projection built without it would silently differ.
func (b *Bus) Replay(ctx context.Context, stream string, subjects []string, fn func(Message) error) (int, error) {
	cons, err := b.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	n := 0
	for pending := info.NumPending; pending > 0; {
		got, err := replayBatch(ctx, cons, pending, fn)
		n += got
		if err != nil {
			return n, fmt.Errorf("replay %s: %w", stream, err)
		}
		if got == 0 {
			return n, fmt.Errorf("replay %s: no messages while %d pending", stream, pending)
		}
		pending -= uint64(got)
	}
	return n, nil
}

// replayBatch fetches at most pending messages (asking for more would wait
// for messages that may never come) and feeds them to fn.
func replayBatch(ctx context.Context, cons jetstream.Consumer, pending uint64, fn func(Message) error) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchContext(ctx))
	if err != nil {
		return 0, err
	}
	n := 0
	for msg := range batch.Messages() {
		meta, err := msg.Metadata()
		if err != nil {
			return n, err
		}
		env, payload, err := events.Parse(msg.Data())
		if err != nil {
			return n, fmt.Errorf("seq %d: %w", meta.Sequence.Stream, err)
		}
		if err := fn(Message{Envelope: env, Payload: payload, Subject: msg.Subject(), Header: msg.Headers(), Delivery: meta.NumDelivered}); err != nil {
			return n, err
		}
		n++
	}
	if err := batch.Error(); err != nil && uint64(n) < pending {
		return n, err
	}
	return n, nil
}

// HistoryLostError says a stream no longer holds every message ever
// stored in it, so a replay would not see them all.
type HistoryLostError struct {
	Stream   string
	FirstSeq uint64 // the oldest sequence still held
	Deleted  int    // messages removed from the middle
}

func (e *HistoryLostError) Error() string {
	if e.FirstSeq > 1 {
		return fmt.Sprintf("stream %s starts at sequence %d: the first %d messages were removed (by its limits or a purge)",
			e.Stream, e.FirstSeq, e.FirstSeq-1)
	}
	return fmt.Sprintf("stream %s has %d deleted messages", e.Stream, e.Deleted)
}

// FullHistory is nil when stream still holds every message stored in it
// since it was created, and a *HistoryLostError when its limits, a purge
// or deletions removed some: a replay would then miss them.
func (b *Bus) FullHistory(ctx context.Context, stream string) error {
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	if st := info.State; st.FirstSeq > 1 || st.NumDeleted > 0 {
		return &HistoryLostError{Stream: stream, FirstSeq: st.FirstSeq, Deleted: st.NumDeleted}
	}
	return nil
}
