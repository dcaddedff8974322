package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestLimiter(opts Options) (*Limiter, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(opts)
	l.now = c.now
	return l, c
}

func TestAllowBurstThenRefill(t *testing.T) {
	l, c := newTestLimiter(Options{RPS: 2, Burst: 3})
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d within burst rejected", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over burst: ok=%v wait=%v, want false 500ms", ok, wait)
	}
	// Rejections do not consume tokens: after the announced wait one request passes.
	for range 5 {
		l.Allow("a")
	}
	c.t = c.t.Add(wait)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("request after Retry-After rejected")
	}
	// Another client has its own bucket.
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("second client rejected")
	}
}

func TestBurstAtTwiceTheLimit(t *testing.T) {
	l, _ := newTestLimiter(Options{RPS: 5, Burst: 10})
	allowed := 0
	for range 20 {
		if ok, _ := l.Allow("hot"); ok {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("allowed %d of 20 at a frozen clock, want the burst of 10", allowed)
	}
	if ok, _ := l.Allow("cold"); !ok {
		t.Fatal("an unrelated client was limited")
	}
}

func TestBoundedClients(t *testing.T) {
	l, c := newTestLimiter(Options{RPS: 1, Burst: 1, MaxClients: 3, IdleTimeout: time.Minute})
	for i := range 3 {
		l.Allow(fmt.Sprint(i))
		c.t = c.t.Add(time.Second)
	}
	l.Allow("0") // 0 is now the most recent, 1 the least
	l.Allow("new")
	if l.Len() != 3 {
		t.Fatalf("Len = %d, want 3", l.Len())
	}
	// "1" was evicted, so it starts with a full bucket again; "0" was kept and is empty.
	if ok, _ := l.Allow("1"); !ok {
		t.Fatal("evicted client did not start fresh")
	}
	if ok, _ := l.Allow("0"); ok {
		t.Fatal("kept client lost its state")
	}
}

func TestSweep(t *testing.T) {
	l, c := newTestLimiter(Options{RPS: 1, Burst: 1, IdleTimeout: time.Minute})
	l.Allow("old")
	c.t = c.t.Add(50 * time.Second)
	l.Allow("recent")
	c.t = c.t.Add(20 * time.Second)
	if n := l.Sweep(); n != 1 || l.Len() != 1 {
		t.Fatalf("Sweep removed %d, %d left; want 1, 1", n, l.Len())
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 1},
		{time.Millisecond, 1},
		{time.Second, 1},
		{1001 * time.Millisecond, 2},
		{90 * time.Second, 90},
		{time.Duration(1 << 62), 60},
	}
	for _, tt := range tests {
		if got := RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
