package docker

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/docker/go-connections/nat"

	"github.com/msctl/msctl/internal/chaos"
	"github.com/msctl/msctl/internal/runtime"
)

// The chaos proxy is a container of the workspace, msctl-<project>-chaos,
// running `msctl agent chaos-proxy` on the workspace network under the
// alias chaos: services dial chaos:<port> for each edge, and it dials the
// infra and the services by their network aliases. It outlives the agent
// as the other containers do, so a killed agent leaves the shop healthy
// and its faults in force. Its control API is published on loopback.
const (
	chaosName = "chaos"
	// kindChaos labels the proxy's container: neither infra (StopInfra
	// leaves it to Cleanup) nor a service; ps without an agent skips it.
	kindChaos = "chaos"
)

var chaosControlPort = nat.Port(strconv.Itoa(chaos.ControlPort) + "/tcp")

// StartChaos runs the chaos proxy for edges, or adopts the running one of
// the same configuration (image, edges), and returns where its control API
// is published.
func (r *Runtime) StartChaos(ctx context.Context, edges []runtime.ChaosEdge) (string, error) {
	if r.chaos == "" {
		return "", fmt.Errorf("%w on docker: it runs msctl itself in a container, and this msctl is not a static linux executable (build it with CGO_ENABLED=0 GOOS=linux)", runtime.ErrChaosUnavailable)
	}
	nw, err := r.ensureNetwork(ctx)
	if err != nil {
		return "", err
	}
	img, err := r.chaosImage(ctx)
	if err != nil {
		return "", err
	}
	cmd := []string{"agent", "chaos-proxy"}
	for _, e := range edges {
		cmd = append(cmd, "--edge", chaos.ProxyEdge{From: e.From, To: e.To, Port: e.Port, Upstream: upstreamAlias(e.To)}.String())
	}
	ports, err := r.ensureInfra(ctx, infraDef{name: chaosName, kind: kindChaos, image: img, cmd: cmd,
		ports: map[nat.Port]int{chaosControlPort: 0}}, nw.Name)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", ports[chaosControlPort]), nil
}

// ChaosAddr is the proxy's port on the workspace network.
func (r *Runtime) ChaosAddr(port int) string {
	return net.JoinHostPort(chaosName, strconv.Itoa(port))
}

// upstreamAlias is where a container dials to: infra and services by their
// network aliases (every replica of a service has its name as alias).
func upstreamAlias(to string) string {
	port := map[string]nat.Port{runtime.Postgres: pgPort, runtime.Broker: natsPort, runtime.Registry: etcdPort}[to]
	if port == "" {
		return net.JoinHostPort(to, strconv.Itoa(servicePort))
	}
	return net.JoinHostPort(to, port.Port())
}

// chaosImage builds the proxy's image from the msctl binary as a service's
// is built from its binary, unless it exists.
func (r *Runtime) chaosImage(ctx context.Context) (string, error) {
	data, err := os.ReadFile(r.chaos)
	if err != nil {
		return "", fmt.Errorf("chaos proxy image: %w", err)
	}
	tag, _, err := r.binaryImage(ctx, chaosName, data)
	if err != nil {
		return "", fmt.Errorf("chaos proxy image: %w", err)
	}
	return tag, nil
}
