package runtime

import (
	"context"
	"errors"
)

// ChaosEdge is one edge of the workspace's chaos proxy: service From
// reaches To through Port of the proxy.
type ChaosEdge struct {
	From, To string
	Port     int
}

// ChaosHost is implemented by runtimes whose instances cannot rely on the
// agent's own listeners (containers outlive it, pods cannot dial the
// developer's machine): the chaos proxy (`msctl agent chaos-proxy`) runs
// inside the workspace as a component of the runtime's own, and holds the
// faults itself.
type ChaosHost interface {
	// StartChaos runs the workspace's chaos proxy for edges, or adopts the
	// running one when its configuration is the same, and returns the
	// address (host:port) where the agent reaches its control API. A
	// runtime that cannot run it returns an error wrapping
	// ErrChaosUnavailable that says why.
	StartChaos(ctx context.Context, edges []ChaosEdge) (control string, err error)
	// ChaosAddr is where services reach port of the proxy (host:port).
	ChaosAddr(port int) string
}

// ErrChaosUnavailable marks a workspace without chaos proxies: its services
// dial directly, and msctl chaos answers with the reason.
var ErrChaosUnavailable = errors.New("msctl chaos is unavailable")
