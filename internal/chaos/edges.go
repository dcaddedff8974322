package chaos

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"strings"
)

// ProxyEdge is one listener of a proxy running inside the workspace
// (ListenEdges): services dial Port for the edge From->To, and each connection
// goes to Upstream, a host:port resolved per connection (a network alias,
// a cluster Service), so a replaced container or pod is followed.
type ProxyEdge struct {
	From, To string
	Port     int
	Upstream string
}

// String is the edge as ParseProxyEdge takes it: from->to=port=upstream.
func (e ProxyEdge) String() string {
	return Edge(e.From, e.To) + "=" + strconv.Itoa(e.Port) + "=" + e.Upstream
}

// ParseProxyEdge reads from->to=port=upstream.
func ParseProxyEdge(s string) (ProxyEdge, error) {
	parts := strings.Split(s, "=")
	if len(parts) != 3 {
		return ProxyEdge{}, fmt.Errorf("proxy edge %q: want from->to=port=host:port", s)
	}
	from, to, ok := strings.Cut(parts[0], "->")
	port, err := strconv.Atoi(parts[1])
	if !ok || from == "" || to == "" || err != nil || port <= 0 || port > 65535 {
		return ProxyEdge{}, fmt.Errorf("proxy edge %q: want from->to=port=host:port with a port in 1-65535", s)
	}
	if _, _, err := net.SplitHostPort(parts[2]); err != nil {
		return ProxyEdge{}, fmt.Errorf("proxy edge %q: upstream: %w", s, err)
	}
	return ProxyEdge{From: from, To: to, Port: port, Upstream: parts[2]}, nil
}

// Ports inside the workspace's proxy: the control API's, and the edges'
// in [FirstEdgePort, FirstEdgePort+edgePortSpan) (EdgePorts).
const (
	ControlPort   = 7070
	FirstEdgePort = 10000
	edgePortSpan  = 20000
)

// EdgePorts gives each edge (from->to) its port on the proxy: one drawn
// from a hash of its name, or on a collision the next free one, edges
// taken in the order given. The addresses services are given then stay
// the same from one agent to the next, and adding or removing an edge
// moves no other edge (but one that collided), so services whose edges
// did not change keep their configuration.
func EdgePorts(edges []string) map[string]int {
	ports := make(map[string]int, len(edges))
	taken := map[int]bool{}
	for _, e := range edges {
		h := fnv.New32a()
		_, _ = h.Write([]byte(e))
		off := int(h.Sum32() % edgePortSpan)
		for taken[FirstEdgePort+off] {
			off = (off + 1) % edgePortSpan
		}
		taken[FirstEdgePort+off] = true
		ports[e] = FirstEdgePort + off
	}
	return ports
}

// ListenEdges opens the proxies of edges on all interfaces, each
// connection dialled to the edge's upstream; serve Handler(Local(set)) as
// their control API. Faults then live in this process, not in the agent:
// they outlive it, and --for expires them without it.
func ListenEdges(edges []ProxyEdge) (*Set, error) {
	set := NewSet()
	for _, e := range edges {
		up := e.Upstream
		if _, err := set.Listen(e.From, e.To, ":"+strconv.Itoa(e.Port), func(context.Context) (string, error) { return up, nil }); err != nil {
			set.Close()
			return nil, err
		}
	}
	return set, nil
}
