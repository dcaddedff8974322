package orchestrator

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// Edge is one connection a service makes: to another service (HTTP) or to
// an infra component (runtime.Postgres, runtime.Broker, runtime.Registry).
type Edge struct{ From, To string }

// Edges lists every edge of a workspace, by service then target: each
// service dials NATS and etcd, Postgres when it has a database, the
// services it depends on, and the public service every routed service.
func Edges(m *manifest.Manifest) []Edge {
	var out []Edge
	for _, name := range m.ServiceNames() {
		out = append(out, serviceEdges(m, name)...)
	}
	return out
}

func serviceEdges(m *manifest.Manifest, name string) []Edge {
	s := m.Services[name]
	to := []string{runtime.Broker, runtime.Registry}
	if s.Database {
		to = append(to, runtime.Postgres)
	}
	var svcs []string
	svcs = append(svcs, s.DependsOn...)
	if s.Public {
		for _, n := range m.ServiceNames() {
			if len(m.Services[n].Routes) > 0 && n != name {
				svcs = append(svcs, n)
			}
		}
	}
	slices.Sort(svcs)
	to = append(to, slices.Compact(svcs)...)
	out := make([]Edge, len(to))
	for i, t := range to {
		out[i] = Edge{From: name, To: t}
	}
	return out
}

// Router, when set in Options, puts a hop between a service and what it
// dials (the agent's chaos proxies): Route answers the address service
// from dials for to, as services reach it; ok false leaves the edge direct.
type Router interface {
	Route(from, to string) (addr string, ok bool)
}

// route points the infra addresses of env at the router's proxies and
// tells the service its upstreams' proxies in UPSTREAM_PROXIES
// (service=host:port,…; services/kit reads it). Only addresses change.
func (o *Orchestrator) route(c *component, env map[string]string) error {
	r := o.opts.Router
	if r == nil {
		return nil
	}
	var proxies []string
	for _, e := range serviceEdges(o.opts.Manifest, c.name) {
		addr, ok := r.Route(e.From, e.To)
		if !ok {
			continue
		}
		switch e.To {
		case runtime.Broker:
			env["NATS_URL"] = "nats://" + addr
		case runtime.Registry:
			env["ETCD_ENDPOINTS"] = "http://" + addr
		case runtime.Postgres:
			dsn, err := url.Parse(env["DATABASE_URL"])
			if err != nil {
				return fmt.Errorf("database URL of %s: %w", c.name, err)
			}
			dsn.Host = addr
			env["DATABASE_URL"] = dsn.String()
		default:
			proxies = append(proxies, e.To+"="+addr)
		}
	}
	if len(proxies) > 0 {
		env["UPSTREAM_PROXIES"] = strings.Join(proxies, ",")
	}
	return nil
}

// ReadyEndpoints returns the host endpoints of a service's ready
// instances, for whoever relays connections to them; when none is ready,
// those running: the registry (which services pick from) may see an
// instance ready before the orchestrator's next probe does. An instance
// that is being stopped on purpose is left out while another is ready: it
// is draining, and its listener closes soon.
func (o *Orchestrator) ReadyEndpoints(service string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.comps[service]
	if !ok {
		return nil
	}
	var ready, running []string
	for _, in := range c.insts {
		if in.cur == nil || in.state == state.StateStopped || in.state == state.StateCrashed {
			continue
		}
		running = append(running, in.cur.Info().Endpoint)
		if in.state == state.StateHealthy && in.cur != in.leaving {
			ready = append(ready, in.cur.Info().Endpoint)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return running
}
