package bus

import (
	"sync"

	"github.com/msctl/msctl/services/kit/fault"
)

// consumerState is what one Consume call keeps across its subscriptions:
// the handler runs of each message and whether a dependency is down.
//
// Attempts are counted here, per stream sequence, and not taken from the
// server's NumDelivered: a message that sat in the local buffer and was
// redelivered without its handler having run was never attempted, and a
// transient failure (the database is down) is waited out without using
// an attempt. The counts live in memory: a restarted consumer starts them
// again, so a message can get up to MaxAttempts handler runs per process.
type consumerState struct {
	outage *fault.Outage

	mu       sync.Mutex
	attempts map[uint64]int // by stream sequence; forgotten once settled
}

func newConsumerState(outage *fault.Outage) *consumerState {
	return &consumerState{outage: outage, attempts: map[uint64]int{}}
}

// attempted returns how many handler runs of seq failed so far.
func (c *consumerState) attempted(seq uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts[seq]
}

// fail counts one failed handler run of seq and returns the total.
func (c *consumerState) fail(seq uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts[seq]++
	return c.attempts[seq]
}

// forget drops the count of a message that was acked or parked.
func (c *consumerState) forget(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.attempts, seq)
}
