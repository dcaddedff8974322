// Package ratelimit keeps one token bucket per client, in memory, with a bounded
// number of clients: the least recently seen are evicted first, and clients idle
// longer than the idle timeout are dropped by Sweep.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configure a Limiter.
type Options struct {
	// RPS is the sustained rate per client; Burst the bucket size.
	RPS   float64
	Burst int
	// MaxClients bounds memory; the least recently seen client is evicted past it.
	MaxClients int
	// IdleTimeout is how long an untouched client is kept; a full bucket after
	// that long is indistinguishable from a new one, so dropping it is free.
	IdleTimeout time.Duration
}

// Limiter decides per client whether a request may proceed.
type Limiter struct {
	opts Options
	now  func() time.Time

	mu      sync.Mutex
	clients map[string]*list.Element // of *client
	lru     *list.List               // front = most recently seen
}

type client struct {
	key      string
	limiter  *rate.Limiter
	lastSeen time.Time
}

// New returns a Limiter. Non-positive MaxClients or IdleTimeout take 100000 and 5m.
func New(opts Options) *Limiter {
	if opts.MaxClients <= 0 {
		opts.MaxClients = 100_000
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.Burst < 1 {
		opts.Burst = 1
	}
	return &Limiter{opts: opts, now: time.Now, clients: map[string]*list.Element{}, lru: list.New()}
}

// Allow takes one token for key. When none is available it returns false and
// how long until one will be.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.touch(key, now)
	// The common case takes a token without allocating a reservation; only a refusal needs one,
	// to know the wait.
	if c.limiter.AllowN(now, 1) {
		return true, 0
	}
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Duration(math.MaxInt64)
	}
	if d := r.DelayFrom(now); d > 0 {
		// Not taking the token: a rejected request must not push the client further back.
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *Limiter) touch(key string, now time.Time) *client {
	if e, ok := l.clients[key]; ok {
		l.lru.MoveToFront(e)
		c := e.Value.(*client)
		c.lastSeen = now
		return c
	}
	for l.lru.Len() >= l.opts.MaxClients {
		l.remove(l.lru.Back())
	}
	c := &client{key: key, limiter: rate.NewLimiter(rate.Limit(l.opts.RPS), l.opts.Burst), lastSeen: now}
	l.clients[key] = l.lru.PushFront(c)
	return c
}

func (l *Limiter) remove(e *list.Element) {
	l.lru.Remove(e)
	delete(l.clients, e.Value.(*client).key)
}

// Sweep drops clients idle for longer than IdleTimeout and returns how many.
func (l *Limiter) Sweep() int {
	cutoff := l.now().Add(-l.opts.IdleTimeout)
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for e := l.lru.Back(); e != nil && e.Value.(*client).lastSeen.Before(cutoff); e = l.lru.Back() {
		l.remove(e)
		n++
	}
	return n
}

// Len is the number of clients tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// RetryAfterSeconds renders a wait as a Retry-After value: whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	switch {
	case d > time.Hour:
		// A bucket that cannot refill within an hour (rate 0) gets a finite, polite answer.
		return 60
	case d <= time.Second:
		return 1
	default:
		return int(math.Ceil(d.Seconds()))
	}
}
