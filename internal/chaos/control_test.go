package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// serve runs the proxies of edges on free ports, and their control API,
// as `msctl agent chaos-proxy` does, and returns the controller of that API
// and each edge's address.
func serve(t *testing.T, edges ...ProxyEdge) (Controller, []string) {
	t.Helper()
	ports := freePorts(t, len(edges))
	addrs := make([]string, len(edges))
	for i := range edges {
		edges[i].Port = ports[i]
		addrs[i] = "127.0.0.1:" + strconv.Itoa(edges[i].Port)
	}
	set, err := ListenEdges(edges)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	srv := httptest.NewServer(Handler(Local(set)))
	t.Cleanup(srv.Close)
	control := strings.TrimPrefix(srv.URL, "http://")
	return Remote(func(context.Context) (string, error) { return control, nil }), addrs
}

// The proxy on its own, driven over its control API as the agent drives it:
// faults apply, errors come back as Local's, and --for expires a fault
// with nobody calling.
func TestProxyAppliesFaultsFromItsControlAPI(t *testing.T) {
	c, addrs := serve(t, ProxyEdge{From: "a", To: "b", Upstream: echo(t, "b")})
	ctx := t.Context()
	if got, took := mustRoundTrip(t, addrs[0]); got != "b:ping" || took > 200*time.Millisecond {
		t.Fatalf("before any fault: %q in %s", got, took)
	}

	_, err := c.Add(ctx, state.FaultSpec{From: "a", To: "c", Down: true}, 0)
	if bad, ok := errors.AsType[*BadFaultError](err); !ok || !strings.Contains(bad.Msg, "edges: a->b") {
		t.Errorf("unknown edge: %v, want a BadFaultError naming the edges", err)
	}
	if err := c.Remove(ctx, "42"); !errors.Is(err, ErrNotFound) || err.Error() != "no such fault: 42" {
		t.Errorf("remove of an unknown id: %v, want ErrNotFound", err)
	}

	f, err := c.Add(ctx, state.FaultSpec{From: "a", To: "b", LatencyMS: 300}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, took := mustRoundTrip(t, addrs[0]); took < 300*time.Millisecond {
		t.Errorf("with 300ms latency a round trip took %s", took)
	}
	if fs, err := c.Faults(ctx); err != nil || len(fs) != 1 || fs[0].ID != f.ID {
		t.Errorf("faults = %+v, %v; want %s", fs, err, f.ID)
	}
	if err := c.Remove(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, took := mustRoundTrip(t, addrs[0]); took >= 300*time.Millisecond {
		t.Errorf("after removing the latency a round trip took %s", took)
	}

	if _, err := c.Add(ctx, state.FaultSpec{From: "a", To: "b", Down: true}, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, _, err := roundTrip(addrs[0]); err == nil {
		t.Error("a round trip through a down edge succeeded")
	}
	until(t, 5*time.Second, "the down fault expired", func() bool {
		fs, err := c.Faults(ctx)
		return err == nil && len(fs) == 0
	})
	mustRoundTrip(t, addrs[0])

	if _, err := c.Add(ctx, state.FaultSpec{From: "a", To: "b", LatencyMS: 10}, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Clear(ctx); err != nil || n != 1 {
		t.Errorf("clear = %d, %v; want 1", n, err)
	}
}

// Each connection dials the upstream by name, so a name that resolves
// elsewhere later is followed.
func TestProxyResolvesUpstreamPerConnection(t *testing.T) {
	_, addrs := serve(t, ProxyEdge{From: "a", To: "b", Upstream: "localhost:" + port(t, echo(t, "b"))})
	if got, _ := mustRoundTrip(t, addrs[0]); got != "b:ping" {
		t.Errorf("through localhost: %q", got)
	}
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseProxyEdge(t *testing.T) {
	e := ProxyEdge{From: "gateway", To: "orders", Port: 10003, Upstream: "orders:8080"}
	if got, err := ParseProxyEdge(e.String()); err != nil || got != e {
		t.Errorf("ParseProxyEdge(%q) = %+v, %v", e.String(), got, err)
	}
	for _, bad := range []string{"gateway->orders=10003", "gateway=10003=orders:8080", "a->b=0=b:1", "a->b=x=b:1", "a->b=1=b"} {
		if _, err := ParseProxyEdge(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseProxyEdge(%q) = %v, want an error naming it", bad, err)
		}
	}
}

// freePorts are n distinct ports nobody listens on. (testenv has
// FreePort, but it imports this package through the docker runtime.)
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for range n {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out
}

// until polls cond every 20ms for up to d.
func until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}

// Ports stay put: an edge keeps its port whatever other edges come or go
// (but for a collision), and none is shared.
func TestEdgePortsStable(t *testing.T) {
	all := []string{"gateway->orders", "gateway->users", "orders->nats", "orders->postgres", "users->etcd"}
	ports := EdgePorts(all)
	seen := map[int]string{}
	for _, e := range all {
		p := ports[e]
		if p < FirstEdgePort || p >= FirstEdgePort+edgePortSpan || seen[p] != "" {
			t.Errorf("%s has port %d (taken by %q)", e, p, seen[p])
		}
		seen[p] = e
	}
	fewer := EdgePorts([]string{"gateway->orders", "orders->nats", "users->etcd"})
	for e, p := range fewer {
		if p != ports[e] {
			t.Errorf("without two other edges %s moved from %d to %d", e, ports[e], p)
		}
	}
	// Two edges whose hashes collide: the later one takes the next port.
	first := map[int]string{}
	for i := 0; ; i++ {
		e := fmt.Sprintf("s%d->nats", i)
		p := EdgePorts([]string{e})[e]
		if a, ok := first[p]; ok {
			got := EdgePorts([]string{a, e})
			if got[a] != p || got[e] != p+1 {
				t.Errorf("colliding %s and %s got %d and %d, want %d and %d", a, e, got[a], got[e], p, p+1)
			}
			break
		}
		first[p] = e
	}
}
