package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/services/kit/events"
)

// Headers of a JetStream atomic batch publish (ADR-50).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// A broker with sync_interval always syncs the disk once per stored message,
// and a stream stores its messages one after the other, so a stream takes
// only as many messages per second as the disk syncs. An atomic batch is
// stored with one sync for all its messages, but setting one up costs about
// as much as a few dozen syncs.
const (
	// atomicMin is the fewest messages for one stream that PublishBatch
	// sends as an atomic batch; fewer are published one by one.
	atomicMin = 64
	// atomicMax is the server's default limit on the size of an atomic batch.
	atomicMax = 1000
)

// PublishBatch publishes msgs and waits for every ack (or ctx). The result
// has one entry per message: nil when the stream stored it (or recognised it
// as a duplicate). Messages for a stream that has many in msgs go as atomic
// batches, the others asynchronously one by one, all at once. A batch the
// stream refuses (one of its messages is a duplicate, after a relay crashed
// between publish and mark) is published again one by one, so that the
// duplicates are acked as such and the rest stored.
func (b *Bus) PublishBatch(ctx context.Context, msgs []*nats.Msg) []error {
	errs := make([]error, len(msgs))
	byStream := map[string][]int{}
	var single []int
	for i, m := range msgs {
		if s := events.StreamOf(m.Subject); s != "" {
			byStream[s] = append(byStream[s], i)
		} else {
			single = append(single, i)
		}
	}
	var wg sync.WaitGroup
	for stream, idx := range byStream {
		if len(idx) < atomicMin {
			single = append(single, idx...)
			continue
		}
		for chunk := range slices.Chunk(idx, atomicMax) {
			wg.Go(func() {
				if err := b.publishAtomic(ctx, msgs, chunk); err != nil {
					b.log.Debug("atomic batch refused, publishing one by one", "stream", stream, "messages", len(chunk), "err", err)
					b.publishAsync(ctx, msgs, chunk, errs)
				}
			})
		}
	}
	b.publishAsync(ctx, msgs, single, errs)
	wg.Wait()
	return errs
}

// publishAsync publishes msgs[i] for every i of idx without waiting in
// between, then waits for their acks and records failures in errs.
func (b *Bus) publishAsync(ctx context.Context, msgs []*nats.Msg, idx []int, errs []error) {
	futures := make([]jetstream.PubAckFuture, len(idx))
	for k, i := range idx {
		f, err := b.js.PublishMsgAsync(msgs[i])
		if err != nil {
			errs[i] = fmt.Errorf("publish %s: %w", msgs[i].Subject, err)
			continue
		}
		futures[k] = f
	}
	for k, f := range futures {
		if f == nil {
			continue
		}
		i := idx[k]
		select {
		case <-f.Ok():
			errs[i] = nil
		case err := <-f.Err():
			errs[i] = fmt.Errorf("publish %s: %w", msgs[i].Subject, err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("publish %s: %w", msgs[i].Subject, ctx.Err())
		}
	}
}

// publishAtomic publishes msgs[i] for every i of idx (all of one stream) as
// one atomic batch: all of them are stored, or none.
func (b *Bus) publishAtomic(ctx context.Context, msgs []*nats.Msg, idx []int) error {
	id := uuid.NewString()
	for k, i := range idx {
		m := &nats.Msg{Subject: msgs[i].Subject, Data: msgs[i].Data, Header: nats.Header{}}
		for h, vs := range msgs[i].Header {
			m.Header[h] = vs
		}
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(k+1))
		if k < len(idx)-1 {
			if err := b.nc.PublishMsg(m); err != nil {
				return fmt.Errorf("stage batch %s: %w", id, err)
			}
			continue
		}
		m.Header.Set(headerBatchCommit, "1")
		resp, err := b.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return fmt.Errorf("commit batch %s: %w", id, err)
		}
		var ack struct {
			Error *struct {
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
			Count int `json:"count"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return fmt.Errorf("commit batch %s: %w", id, err)
		}
		if ack.Error != nil {
			return fmt.Errorf("commit batch %s: %s (%d)", id, ack.Error.Description, ack.Error.ErrCode)
		}
		if ack.Count != len(idx) {
			return fmt.Errorf("commit batch %s: stored %d of %d", id, ack.Count, len(idx))
		}
	}
	return nil
}
