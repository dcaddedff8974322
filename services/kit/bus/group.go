package bus

import (
	"context"
	"fmt"
	"sync"
)

// Group turns h into a Handler for a consumer with several handler slots:
// the messages of concurrent calls that share a key are handed to h
// together, at most max at a time, and each call returns its message's
// result. Batches of one key run one at a time; batches of different keys
// run concurrently. It gives a consumer started with Consume (one message
// per call) the single commit per batch of ConsumeBatch, and keys let the
// handler choose which messages may share a transaction: batches whose
// messages lock the same rows in the same order cannot deadlock each other.
// key may be nil: one key for all.
func Group(h BatchHandler, max int, key func(Message) string) Handler {
	g := &group{h: h, max: max, key: key, keys: map[string]*groupQueue{}}
	return g.handle
}

type group struct {
	h   BatchHandler
	max int
	key func(Message) string

	mu   sync.Mutex
	keys map[string]*groupQueue // keys with a batch running
}

// groupQueue holds the calls of one key waiting for the running batch.
type groupQueue struct{ waiting []groupCall }

type groupCall struct {
	ctx  context.Context
	m    Message
	done chan error
}

func (g *group) handle(ctx context.Context, m Message) error {
	k := ""
	if g.key != nil {
		k = g.key(m)
	}
	c := groupCall{ctx: ctx, m: m, done: make(chan error, 1)}
	g.mu.Lock()
	q, running := g.keys[k]
	if !running {
		q = &groupQueue{}
		g.keys[k] = q
	}
	q.waiting = append(q.waiting, c)
	g.mu.Unlock()
	if !running {
		go g.run(k, q)
	}
	return <-c.done
}

// run handles the batches of key k until none of its calls is waiting.
func (g *group) run(k string, q *groupQueue) {
	for {
		g.mu.Lock()
		n := min(len(q.waiting), max(g.max, 1))
		if n == 0 {
			delete(g.keys, k)
			g.mu.Unlock()
			return
		}
		batch := q.waiting[:n:n]
		q.waiting = q.waiting[n:]
		g.mu.Unlock()

		ms := make([]Message, n)
		for i, c := range batch {
			ms[i] = c.m
			ms[i].ctx = c.ctx // the caller's context holds the message's consumer span
		}
		// The first caller's context stands for the batch, without its
		// end: a caller cut at its HandlerTimeout must not abort the
		// messages of the others, which the consumer settles at their own
		// deadlines.
		errs := g.h(context.WithoutCancel(batch[0].ctx), ms)
		for i, c := range batch {
			if len(errs) != n {
				c.done <- fmt.Errorf("batch handler answered %d results for %d messages", len(errs), n)
				continue
			}
			c.done <- errs[i]
		}
	}
}
