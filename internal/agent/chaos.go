package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/msctl/msctl/internal/chaos"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/orchestrator"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// ErrChaosUnavailable is what the chaos API answers on a runtime whose
// services the agent's proxies cannot sit in front of.
var ErrChaosUnavailable = errors.New("msctl chaos works on the local and docker runtimes; on kubernetes the pods cannot reach the agent's proxies (not built yet)")

// chaosPortsFile keeps each edge's proxy port across agents: docker
// containers outlive the agent and carry the proxy addresses in their
// environment, so a new agent listening where the old one did lets them be
// adopted unchanged.
const chaosPortsFile = "chaos-ports.json"

// chaosRouter is the orchestrator.Router of the agent's proxies.
type chaosRouter struct {
	set         *chaos.Set
	serviceAddr func(port string) string
}

func (r chaosRouter) Route(from, to string) (string, bool) {
	addr, ok := r.set.Addr(from, to)
	if !ok {
		return "", false
	}
	_, port, _ := net.SplitHostPort(addr)
	return r.serviceAddr(port), true
}

// startChaos opens a proxy for every edge of the workspace (local and
// docker; nil on kubernetes) whose upstream is asked of orch per
// connection. orch is read through a pointer: the orchestrator is made
// after the proxies, which it needs as its Router.
func startChaos(rt runtime.Runtime, m *manifest.Manifest, stateDir string, orch *atomic.Pointer[orchestrator.Orchestrator]) (*chaos.Set, orchestrator.Router, error) {
	if rt.Name() == "kubernetes" {
		return nil, nil, nil
	}
	host, serviceAddr := "127.0.0.1", func(port string) string { return net.JoinHostPort("127.0.0.1", port) }
	if hl, ok := rt.(runtime.HostListener); ok {
		ip, err := hl.HostListenIP(context.Background())
		if err != nil {
			return nil, nil, err
		}
		host, serviceAddr = ip, hl.ServiceAddr
	}
	ports := map[string]int{}
	if b, err := os.ReadFile(filepath.Join(stateDir, chaosPortsFile)); err == nil {
		_ = json.Unmarshal(b, &ports) // a damaged file only costs new ports
	}
	set := chaos.NewSet()
	for _, e := range orchestrator.Edges(m) {
		up := upstreamOf(e.To, orch)
		addr, err := set.Listen(e.From, e.To, net.JoinHostPort(host, strconv.Itoa(ports[chaos.Edge(e.From, e.To)])), up)
		if err != nil && ports[chaos.Edge(e.From, e.To)] != 0 {
			addr, err = set.Listen(e.From, e.To, net.JoinHostPort(host, "0"), up)
		}
		if err != nil {
			set.Close()
			return nil, nil, err
		}
		_, port, _ := net.SplitHostPort(addr)
		ports[chaos.Edge(e.From, e.To)], _ = strconv.Atoi(port)
	}
	b, _ := json.Marshal(ports)
	if err := os.WriteFile(filepath.Join(stateDir, chaosPortsFile), b, 0o644); err != nil {
		set.Close()
		return nil, nil, err
	}
	return set, chaosRouter{set: set, serviceAddr: serviceAddr}, nil
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
	unavailable := func(w http.ResponseWriter) bool {
		if a.chaos == nil {
			writeError(w, http.StatusConflict, "chaos_unavailable", ErrChaosUnavailable.Error())
		}
		return a.chaos == nil
	}
	mux.HandleFunc("GET /api/chaos", func(w http.ResponseWriter, r *http.Request) {
		if unavailable(w) {
			return
		}
		writeJSON(w, http.StatusOK, a.chaos.Faults())
	})
	mux.HandleFunc("POST /api/chaos", func(w http.ResponseWriter, r *http.Request) {
		if unavailable(w) {
			return
		}
		var req state.FaultRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad_fault", "bad fault body: "+err.Error())
			return
		}
		f, err := a.chaos.Add(req.FaultSpec, time.Duration(req.ForMS)*time.Millisecond)
		if bad, ok := errors.AsType[*chaos.BadFaultError](err); ok {
			writeError(w, http.StatusBadRequest, "bad_fault", bad.Error())
			return
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "chaos_failed", err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, f)
	})
	mux.HandleFunc("DELETE /api/chaos/{id}", func(w http.ResponseWriter, r *http.Request) {
		if unavailable(w) {
			return
		}
		if err := a.chaos.Remove(r.PathValue("id")); err != nil {
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no active fault %s (see msctl chaos ls)", r.PathValue("id")))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/chaos/clear", func(w http.ResponseWriter, r *http.Request) {
		if unavailable(w) {
			return
		}
		writeJSON(w, http.StatusOK, chaosCleared{Removed: a.chaos.Clear()})
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
