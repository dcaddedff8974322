package chaos

import (
	"context"
	"fmt"
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

// Ports inside the workspace's proxy: the control API, and the edges' from
// FirstEdgePort on, in the order of the workspace's edge list, so that the
// addresses services are given stay the same from one agent to the next.
const (
	ControlPort   = 7070
	FirstEdgePort = 10000
)

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
