package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/msctl/msctl/internal/chaos"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// errNoChaosHost is why a runtime that is neither local nor a
// runtime.ChaosHost has no chaos.
var errNoChaosHost = fmt.Errorf("%w: this runtime runs no chaos proxy", runtime.ErrChaosUnavailable)

// chaosStartTimeout bounds starting a proxy in the workspace: the first
// one builds its image.
const chaosStartTimeout = 2 * time.Minute

// chaosRouter is the orchestrator.Router of the proxies: the address a
// service dials for an edge.
type chaosRouter map[string]string // by edge "from->to"

func (r chaosRouter) Route(from, to string) (string, bool) {
	addr, ok := r[chaos.Edge(from, to)]
	return addr, ok
}

// startChaos puts a proxy on every edge of the workspace. A runtime.ChaosHost
// runs them inside the workspace, faults and all, and the agent drives them
// through their control API. Otherwise (local) they listen on loopback in
// the agent, each connection asking orch for its upstream. orch is read
// through a pointer: the orchestrator is made after the proxies, which it
// needs as its Router. A runtime that cannot run them returns an error
// wrapping runtime.ErrChaosUnavailable: the workspace runs without.
func startChaos(ctx context.Context, rt runtime.Runtime, m *manifest.Manifest, orch *atomic.Pointer[orchestrator.Orchestrator]) (chaos.Controller, orchestrator.Router, error) {
	edges := orchestrator.Edges(m)
	router := chaosRouter{}
	if host, ok := rt.(runtime.ChaosHost); ok {
		names := make([]string, len(edges))
		for i, e := range edges {
			names[i] = chaos.Edge(e.From, e.To)
		}
		ports := chaos.EdgePorts(names)
		ces := make([]runtime.ChaosEdge, len(edges))
		for i, e := range edges {
			ces[i] = runtime.ChaosEdge{From: e.From, To: e.To, Port: ports[names[i]]}
			router[names[i]] = host.ChaosAddr(ces[i].Port)
		}
		control, err := host.StartChaos(ctx, ces)
		if err != nil {
			return nil, nil, err
		}
		return chaos.Remote(func(context.Context) (string, error) { return control, nil }), router, nil
	}
	if rt.Name() != "local" {
		return nil, nil, errNoChaosHost
	}
	set := chaos.NewSet()
	for _, e := range edges {
		addr, err := set.Listen(e.From, e.To, "127.0.0.1:0", upstreamOf(e.To, orch))
		if err != nil {
			set.Close()
			return nil, nil, err
		}
		router[chaos.Edge(e.From, e.To)] = addr
	}
	return chaos.Local(set), router, nil
}

// upstreamOf answers, per connection, the host endpoint of an edge's
// target: the infra's current endpoint, or the next ready instance of a
// service, round-robin.
func upstreamOf(to string, orch *atomic.Pointer[orchestrator.Orchestrator]) chaos.Upstream {
	var next atomic.Uint64
	return func(context.Context) (string, error) {
		o := orch.Load()
		if o == nil {
			return "", errors.New("the workspace is not started")
		}
		var inf runtime.Infra
		if to == runtime.Postgres || to == runtime.Broker || to == runtime.Registry {
			var ok bool
			if inf, ok = o.Infra(); !ok {
				return "", fmt.Errorf("%s is not running", to)
			}
		}
		switch to {
		case runtime.Postgres:
			return inf.Host.Postgres, nil
		case runtime.Broker:
			return strings.TrimPrefix(inf.Host.NATSURL, "nats://"), nil
		case runtime.Registry:
			if len(inf.Host.Etcd) == 0 {
				return "", errors.New("etcd has no endpoint")
			}
			return strings.TrimPrefix(inf.Host.Etcd[next.Add(1)%uint64(len(inf.Host.Etcd))], "http://"), nil
		}
		eps := o.ReadyEndpoints(to)
		if len(eps) == 0 {
			return "", fmt.Errorf("%s has no running instance", to)
		}
		return eps[next.Add(1)%uint64(len(eps))], nil
	}
}

func (a *Agent) chaosRoutes(mux *http.ServeMux) {
	// handle answers pattern with serve's status and body (none when nil),
	// or with the controller's error: the fault's or the id's fault, else
	// the proxy's (unreachable, say), which the message names.
	handle := func(pattern string, serve func(w http.ResponseWriter, r *http.Request) (int, any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if a.chaos == nil {
				writeError(w, http.StatusConflict, "chaos_unavailable", a.chaosErr.Error())
				return
			}
			status, body, err := serve(w, r)
			switch bad, ok := errors.AsType[*chaos.BadFaultError](err); {
			case err == nil && body == nil:
				w.WriteHeader(status)
			case err == nil:
				writeJSON(w, status, body)
			case ok:
				writeError(w, http.StatusBadRequest, "bad_fault", bad.Error())
			case errors.Is(err, chaos.ErrNotFound):
				writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no active fault %s (see msctl chaos ls)", r.PathValue("id")))
			default:
				writeError(w, http.StatusBadGateway, "chaos_failed", err.Error())
			}
		})
	}
	handle("GET /api/chaos", func(_ http.ResponseWriter, r *http.Request) (int, any, error) {
		fs, err := a.chaos.Faults(r.Context())
		return http.StatusOK, fs, err
	})
	handle("POST /api/chaos", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var req state.FaultRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return 0, nil, &chaos.BadFaultError{Msg: "bad fault body: " + err.Error()}
		}
		f, err := a.chaos.Add(r.Context(), req.FaultSpec, time.Duration(req.ForMS)*time.Millisecond)
		return http.StatusCreated, f, err
	})
	handle("DELETE /api/chaos/{id}", func(_ http.ResponseWriter, r *http.Request) (int, any, error) {
		return http.StatusNoContent, nil, a.chaos.Remove(r.Context(), r.PathValue("id"))
	})
	handle("POST /api/chaos/clear", func(_ http.ResponseWriter, r *http.Request) (int, any, error) {
		n, err := a.chaos.Clear(r.Context())
		return http.StatusOK, chaosCleared{Removed: n}, err
	})
}

// chaosCleared is the answer of POST /api/chaos/clear.
type chaosCleared struct {
	Removed int `json:"removed"`
}

// Faults lists the workspace's active faults.
func (c *Client) Faults(ctx context.Context) ([]state.Fault, error) {
	var out []state.Fault
	return out, c.do(ctx, http.MethodGet, "/api/chaos", &out)
}

// AddFault applies a fault.
func (c *Client) AddFault(ctx context.Context, req state.FaultRequest) (state.Fault, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return state.Fault{}, err
	}
	resp, err := c.send(ctx, http.MethodPost, "/api/chaos", body)
	if err != nil {
		return state.Fault{}, err
	}
	defer resp.Body.Close()
	var f state.Fault
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		return state.Fault{}, fmt.Errorf("agent POST /api/chaos: decode: %w", err)
	}
	return f, nil
}

// RemoveFault ends one fault.
func (c *Client) RemoveFault(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/chaos/"+url.PathEscape(id), nil)
}

// ClearFaults ends every fault and returns how many there were.
func (c *Client) ClearFaults(ctx context.Context) (int, error) {
	var out chaosCleared
	return out.Removed, c.do(ctx, http.MethodPost, "/api/chaos/clear", &out)
}
