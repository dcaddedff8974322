package chaos

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// echo is a real TCP server that answers every line with name + ":" + line.
func echo(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, name+":"+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func fixed(addr string) Upstream {
	return func(context.Context) (string, error) { return addr, nil }
}

func newSet(t *testing.T) *Set {
	t.Helper()
	s := NewSet()
	t.Cleanup(s.Close)
	return s
}

// proxyTo listens for the edge from->to in front of a new echo server
// answering as name, and returns the proxy's address.
func proxyTo(t *testing.T, s *Set, from, to, name string) string {
	t.Helper()
	addr, err := s.Listen(from, to, "127.0.0.1:0", fixed(echo(t, name)))
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func mustAdd(t *testing.T, s *Set, spec state.FaultSpec, lasts time.Duration) state.Fault {
	t.Helper()
	f, err := s.Add(spec, lasts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// dial opens a connection to addr that the test's end closes.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip dials addr, sends one line and returns the answer and how long
// the exchange took.
func roundTrip(addr string) (string, time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), time.Since(start), err
}

func mustRoundTrip(t *testing.T, addr string) (string, time.Duration) {
	t.Helper()
	got, took, err := roundTrip(addr)
	if err != nil {
		t.Fatalf("round trip through %s: %v", addr, err)
	}
	return got, took
}

// answers fails the test unless a round trip through addr gets want.
func answers(t *testing.T, addr, want, when string) {
	t.Helper()
	if got, _ := mustRoundTrip(t, addr); got != want {
		t.Fatalf("%s: answer = %q, want %q", when, got, want)
	}
}

func TestLatencyDelaysAnswers(t *testing.T) {
	s := newSet(t)
	addr := proxyTo(t, s, "orders", "payments", "payments")
	answers(t, addr, "payments:ping", "before any fault")
	// An open connection gets the fault too, as with toxiproxy's own proxy.
	open := dial(t, addr)
	f := mustAdd(t, s, state.FaultSpec{From: "orders", To: "payments", LatencyMS: 300, JitterMS: 50}, 0)
	if _, took := mustRoundTrip(t, addr); took < 250*time.Millisecond {
		t.Errorf("new connection: round trip took %s with 300ms±50ms latency", took)
	}
	start := time.Now()
	_, _ = io.WriteString(open, "again\n")
	if line, err := bufio.NewReader(open).ReadString('\n'); err != nil || line != "payments:again\n" {
		t.Fatalf("open connection: %q, %v", line, err)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("open connection: round trip took %s with 300ms±50ms latency", took)
	}
	if err := s.Remove(f.ID); err != nil {
		t.Fatal(err)
	}
	if _, took := mustRoundTrip(t, addr); took > 200*time.Millisecond {
		t.Errorf("after rm: round trip took %s", took)
	}
}

func TestDownRefusesCutsAndRecovers(t *testing.T) {
	s := newSet(t)
	addr := proxyTo(t, s, "orders", "nats", "nats")
	open := dial(t, addr)
	r := bufio.NewReader(open)
	_, _ = io.WriteString(open, "a\n")
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	f := mustAdd(t, s, state.FaultSpec{From: "orders", To: "nats", Down: true}, 0)
	_ = open.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.WriteString(open, "b\n")
	if line, err := r.ReadString('\n'); err == nil {
		t.Errorf("open connection still answers while down: %q", line)
	}
	if got, _, err := roundTrip(addr); err == nil {
		t.Errorf("new connection answered %q while down", got)
	}
	if err := s.Remove(f.ID); err != nil {
		t.Fatal(err)
	}
	answers(t, addr, "nats:ping", "after rm")
}

func TestErrorRateOneFailsEveryConnection(t *testing.T) {
	s := newSet(t)
	addr := proxyTo(t, s, "gateway", "orders", "orders")
	mustAdd(t, s, state.FaultSpec{From: "gateway", To: "orders", ErrorRate: 1}, 0)
	for i := range 5 {
		if got, _, err := roundTrip(addr); err == nil {
			t.Fatalf("connection %d answered %q with error rate 1", i, got)
		}
	}
	if n := s.Clear(); n != 1 {
		t.Errorf("clear removed %d faults, want 1", n)
	}
	mustRoundTrip(t, addr)
}

// A kept-alive connection is not spared: the error rate is drawn per
// request, so half of them failing means one of the first 30 fails
// (missing all: 2^-30), whatever the connection drew before.
func TestErrorRateAppliesPerRequestOnAKeptConnection(t *testing.T) {
	s := newSet(t)
	addr := proxyTo(t, s, "gateway", "users", "users")
	c := dial(t, addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	mustAdd(t, s, state.FaultSpec{From: "gateway", To: "users", ErrorRate: 0.5}, 0)
	for i := range 30 {
		_, _ = io.WriteString(c, "ping\n")
		if _, err := r.ReadString('\n'); err != nil {
			return // failed, as it should at some point
		}
		if i == 29 {
			t.Fatal("30 requests on one connection all passed with error rate 0.5")
		}
	}
}

func TestFaultExpires(t *testing.T) {
	s := newSet(t)
	addr := proxyTo(t, s, "orders", "postgres", "pg")
	f := mustAdd(t, s, state.FaultSpec{From: "orders", To: "postgres", Down: true}, 300*time.Millisecond)
	if f.ExpiresAt == nil || f.ExpiresAt.Sub(f.CreatedAt) != 300*time.Millisecond {
		t.Fatalf("expires_at = %v, created %v", f.ExpiresAt, f.CreatedAt)
	}
	if len(s.Faults()) != 1 {
		t.Fatalf("faults = %v", s.Faults())
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(s.Faults()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if fs := s.Faults(); len(fs) != 0 {
		t.Fatalf("fault did not expire: %v", fs)
	}
	mustRoundTrip(t, addr)
	if err := s.Remove(f.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("rm of an expired fault = %v, want ErrNotFound", err)
	}
}

func TestUpstreamChosenPerConnection(t *testing.T) {
	s := newSet(t)
	a, b := echo(t, "a"), echo(t, "b")
	var cur atomic.Pointer[string]
	cur.Store(&a)
	addr, err := s.Listen("gateway", "inventory", "127.0.0.1:0", func(context.Context) (string, error) { return *cur.Load(), nil })
	if err != nil {
		t.Fatal(err)
	}
	answers(t, addr, "a:ping", "first upstream")
	cur.Store(&b)
	answers(t, addr, "b:ping", "after the upstream changed")
}

func TestBandwidthSlowsLargeAnswers(t *testing.T) {
	s := newSet(t)
	addr := proxyTo(t, s, "orders", "etcd", "etcd")
	mustAdd(t, s, state.FaultSpec{From: "orders", To: "etcd", BandwidthKBps: 32}, 0)
	c := dial(t, addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line := strings.Repeat("x", 16*1024) + "\n" // 16 KB each way at 32 KB/s
	start := time.Now()
	go func() { _, _ = io.WriteString(c, line) }()
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || len(got) != len(line)+len("etcd:") {
		t.Fatalf("answer of %d bytes, %v", len(got), err)
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("16 KB each way at 32 KB/s took %s", took)
	}
}

func TestBadFaultsNameTheFix(t *testing.T) {
	s := newSet(t)
	for _, to := range []string{"nats", "payments"} {
		if _, err := s.Listen("orders", to, "127.0.0.1:0", fixed("127.0.0.1:1")); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		spec state.FaultSpec
		want string
	}{
		{state.FaultSpec{From: "orders", To: "nowhere", Down: true}, "edges: orders->nats, orders->payments"},
		{state.FaultSpec{From: "orders", To: "nats"}, "at least one of --latency"},
		{state.FaultSpec{From: "orders", To: "nats", ErrorRate: 1.5}, "between 0 and 1"},
		{state.FaultSpec{From: "orders", To: "nats", JitterMS: 5}, "jitter needs a latency"},
	}
	for _, c := range cases {
		_, err := s.Add(c.spec, 0)
		var bad *BadFaultError
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%+v) = %v, want a BadFaultError containing %q", c.spec, err, c.want)
		}
	}
	if len(s.Faults()) != 0 {
		t.Errorf("a rejected fault was kept: %v", s.Faults())
	}
}

// BenchmarkRoundTrip is the hop's cost: one line and its answer on an open
// connection, direct and through a proxy without faults.
func BenchmarkRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()
	s := NewSet()
	defer s.Close()
	proxied, err := s.Listen("a", "b", "127.0.0.1:0", fixed(ln.Addr().String()))
	if err != nil {
		b.Fatal(err)
	}
	for name, addr := range map[string]string{"direct": ln.Addr().String(), "proxied": proxied} {
		b.Run(name, func(b *testing.B) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 64)
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRefusingUpstreamIsSkipped: an upstream whose listener just closed (a
// replica being replaced) refuses; the connection goes to the next pick
// instead of being reset.
func TestRefusingUpstreamIsSkipped(t *testing.T) {
	s := newSet(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	live := echo(t, "live")
	var picks atomic.Int64
	addr, err := s.Listen("gateway", "orders", "127.0.0.1:0", func(context.Context) (string, error) {
		if picks.Add(1)%2 == 1 {
			return closed, nil
		}
		return live, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if got, _ := mustRoundTrip(t, addr); got != "live:ping" {
			t.Fatalf("connection %d answered %q, want live:ping", i, got)
		}
	}
}
