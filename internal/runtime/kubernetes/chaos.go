package kubernetes

import (
	"context"
	"fmt"
	"strconv"

	"github.com/msctl/msctl/internal/chaos"
	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/runtime"
)

// The chaos proxy is msctl in the msctl-chaos pod (gen.Chaos), applied with
// the infra by StartInfra once StartChaos asked for it: services dial its
// Service, it dials theirs and the infra's, and the agent reaches its
// control API through a port-forward. Pods never dial the developer's
// machine.

// chaosState is what StartChaos asked for and the image StartInfra loaded.
type chaosState struct {
	edges []runtime.ChaosEdge
	image string
	fwd   *forwarder // to the control port, for the runtime's life
}

// StartChaos records the proxy's edges, which StartInfra applies, and
// returns the local end of a port-forward to its control API (a ready
// proxy pod is looked up per connection, so it follows a new pod).
func (r *Runtime) StartChaos(_ context.Context, edges []runtime.ChaosEdge) (string, error) {
	if r.opts.CollectorBinary == "" {
		return "", fmt.Errorf("%w on kubernetes: the proxy pod runs msctl itself, and this msctl is not a static linux executable (build it with CGO_ENABLED=0 GOOS=linux)", runtime.ErrChaosUnavailable)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chaos.edges = edges
	if r.chaos.fwd == nil {
		l, err := listen(0)
		if err != nil {
			return "", fmt.Errorf("port-forward to %s: %w", gen.ChaosName, err)
		}
		r.chaos.fwd = r.forward(l, chaos.ControlPort, r.readyPodOf(gen.ChaosName))
	}
	return r.chaos.fwd.Addr(), nil
}

// ChaosAddr is the proxy's Service port.
func (r *Runtime) ChaosAddr(port int) string {
	return gen.ChaosName + ":" + strconv.Itoa(port)
}

// loadChaosImage gets the msctl image (the collector's) onto the cluster
// when StartChaos asked for a proxy.
func (r *Runtime) loadChaosImage(ctx context.Context) error {
	r.mu.Lock()
	asked := r.chaos.edges != nil
	r.mu.Unlock()
	if !asked {
		return nil
	}
	img, err := r.images.collectorImage(ctx, r.opts.CollectorBinary)
	if err != nil {
		return fmt.Errorf("chaos proxy: %w", err)
	}
	r.mu.Lock()
	r.chaos.image = img
	r.mu.Unlock()
	return nil
}

// chaosSpecLocked is the generator's chaos proxy, nil until its image is
// loaded.
func (r *Runtime) chaosSpecLocked() *gen.Chaos {
	if r.chaos.image == "" {
		return nil
	}
	c := &gen.Chaos{Image: r.chaos.image, Args: []string{"agent", "chaos-proxy"}, ControlPort: chaos.ControlPort}
	for _, e := range r.chaos.edges {
		c.Edges = append(c.Edges, gen.ChaosEdge{From: e.From, To: e.To, Port: e.Port})
		c.Args = append(c.Args, "--edge", chaos.ProxyEdge{From: e.From, To: e.To, Port: e.Port, Upstream: gen.ChaosUpstream(e.To)}.String())
	}
	return c
}
