// Package chaos puts a fault-injecting TCP proxy on every edge of a
// workspace (a service and what it dials: another service, NATS, etcd,
// Postgres) and adds and removes faults on them while the system runs.
// The faults are toxiproxy's toxics, applied by toxiproxy's own link
// machinery (github.com/Shopify/toxiproxy/v2 used as a library); what
// differs from toxiproxy's Proxy is that the upstream is chosen per
// connection (see Upstream).
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/msctl/msctl/internal/state"
)

// ErrNotFound is returned by Remove for an id no active fault has.
var ErrNotFound = errors.New("no such fault")

// BadFaultError is a fault that cannot be added; its message names the fix
// (for an unknown edge, the edges there are).
type BadFaultError struct{ Msg string }

func (e *BadFaultError) Error() string { return e.Msg }

// Set is the proxies of one workspace and their active faults. Safe for
// concurrent use.
type Set struct {
	server *toxiproxy.ApiServer

	mu      sync.Mutex
	proxies map[string]*proxy // by edge "from->to"
	faults  []*fault          // oldest first
	nextID  int
	closed  bool
}

type fault struct {
	state.Fault
	toxics []string // names in the edge's ToxicCollection
	down   bool
	timer  *time.Timer
}

// NewSet returns an empty Set.
func NewSet() *Set {
	// toxiproxy logs through zerolog: its links warn on every connection a
	// peer resets, which is what faults do all day. The agent has its own
	// log; keep toxiproxy quiet (Nop logger, no metrics registered).
	return &Set{
		server:  toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: map[string]*proxy{},
	}
}

// Edge is the name of an edge, as `msctl chaos` takes it.
func Edge(from, to string) string { return from + "->" + to }

// Listen starts the proxy of an edge on addr (host:port; port 0 picks one)
// and returns the address it listens on.
func (s *Set) Listen(from, to, addr string, up Upstream) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edge := Edge(from, to)
	if s.closed {
		return "", errors.New("chaos proxies are closed")
	}
	if _, ok := s.proxies[edge]; ok {
		return "", fmt.Errorf("edge %s already has a proxy", edge)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("proxy for %s: %w", edge, err)
	}
	p := newProxy(s.server, edge, ln, up)
	s.proxies[edge] = p
	return p.addr(), nil
}

// Addr is where the proxy of an edge listens; ok is false without one.
func (s *Set) Addr(from, to string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.proxies[Edge(from, to)]
	if !ok {
		return "", false
	}
	return p.addr(), true
}

// Validate checks a fault's settings without looking at its edge.
func Validate(spec state.FaultSpec) error {
	switch {
	case spec.LatencyMS < 0 || spec.JitterMS < 0:
		return &BadFaultError{"latency and jitter cannot be negative (e.g. --latency 300ms --jitter 50ms)"}
	case spec.JitterMS > 0 && spec.LatencyMS == 0:
		return &BadFaultError{"jitter needs a latency (e.g. --latency 300ms --jitter 50ms)"}
	case spec.JitterMS > spec.LatencyMS:
		return &BadFaultError{"jitter cannot exceed the latency"}
	case math.IsNaN(spec.ErrorRate) || spec.ErrorRate < 0 || spec.ErrorRate > 1:
		return &BadFaultError{"error rate is a share of requests between 0 and 1 (e.g. --error-rate 0.5)"}
	case spec.BandwidthKBps < 0:
		return &BadFaultError{"bandwidth cannot be negative (e.g. --bandwidth 64KB)"}
	case !spec.Down && spec.LatencyMS == 0 && spec.ErrorRate == 0 && spec.BandwidthKBps == 0:
		return &BadFaultError{"a fault needs at least one of --latency, --error-rate, --down, --bandwidth"}
	}
	return nil
}

// Add applies a fault to its edge; with d > 0 it removes itself after d.
func (s *Set) Add(spec state.FaultSpec, d time.Duration) (state.Fault, error) {
	if err := Validate(spec); err != nil {
		return state.Fault{}, err
	}
	if d < 0 {
		return state.Fault{}, &BadFaultError{"a fault's duration cannot be negative (e.g. --for 30s)"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.proxies[spec.Edge()]
	if !ok {
		edges := slices.Sorted(maps.Keys(s.proxies))
		return state.Fault{}, &BadFaultError{fmt.Sprintf("unknown edge %s; edges: %s", spec.Edge(), strings.Join(edges, ", "))}
	}
	s.nextID++
	f := &fault{Fault: state.Fault{ID: strconv.Itoa(s.nextID), FaultSpec: spec, CreatedAt: time.Now().UTC()}}
	for _, t := range toxicsOf(spec) {
		t.Name = "f" + f.ID + "-" + t.Type + "-" + t.Stream
		body, _ := json.Marshal(t)
		if _, err := p.tp.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
			s.removeToxics(p, f)
			return state.Fault{}, fmt.Errorf("add %s toxic to %s: %w", t.Type, spec.Edge(), err)
		}
		f.toxics = append(f.toxics, t.Name)
	}
	if spec.Down {
		f.down = true
		p.down.Add(1)
		p.cut()
	}
	if d > 0 {
		exp := f.CreatedAt.Add(d)
		f.ExpiresAt = &exp
		id := f.ID
		f.timer = time.AfterFunc(d, func() { _ = s.Remove(id) })
	}
	s.faults = append(s.faults, f)
	return f.Fault, nil
}

// toxic is the JSON toxiproxy's ToxicCollection takes.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// toxicsOf maps a fault to toxics. Latency delays the answers
// (downstream): one round trip is then at least the latency. Errors close
// the connection at that share of what clients send (upstream, see
// errorToxic). Bandwidth limits both directions.
// Down is not a toxic: the proxy refuses and cuts connections itself.
func toxicsOf(spec state.FaultSpec) []toxic {
	var out []toxic
	if spec.LatencyMS > 0 {
		out = append(out, toxic{Type: "latency", Stream: "downstream", Toxicity: 1,
			Attributes: map[string]any{"latency": spec.LatencyMS, "jitter": spec.JitterMS}})
	}
	if spec.ErrorRate > 0 {
		out = append(out, toxic{Type: errorToxicType, Stream: "upstream", Toxicity: 1,
			Attributes: map[string]any{"rate": spec.ErrorRate}})
	}
	if spec.BandwidthKBps > 0 {
		for _, dir := range []string{"upstream", "downstream"} {
			out = append(out, toxic{Type: "bandwidth", Stream: dir, Toxicity: 1,
				Attributes: map[string]any{"rate": spec.BandwidthKBps}})
		}
	}
	return out
}

// Remove ends one fault.
func (s *Set) Remove(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.faults, func(f *fault) bool { return f.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	s.endLocked(s.faults[i])
	s.faults = slices.Delete(s.faults, i, i+1)
	return nil
}

// Clear ends every fault and returns how many there were.
func (s *Set) Clear() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.faults)
	for _, f := range s.faults {
		s.endLocked(f)
	}
	s.faults = nil
	return n
}

func (s *Set) endLocked(f *fault) {
	if f.timer != nil {
		f.timer.Stop()
	}
	p := s.proxies[f.Edge()]
	s.removeToxics(p, f)
	if f.down {
		p.down.Add(-1)
	}
}

func (s *Set) removeToxics(p *proxy, f *fault) {
	for _, name := range f.toxics {
		_ = p.tp.Toxics.RemoveToxic(context.Background(), name)
	}
}

// Faults lists the active faults, oldest first.
func (s *Set) Faults() []state.Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]state.Fault, len(s.faults))
	for i, f := range s.faults {
		out[i] = f.Fault
	}
	return out
}

// Close ends every fault and closes every proxy and its connections.
func (s *Set) Close() {
	s.Clear()
	s.mu.Lock()
	s.closed = true
	ps := s.proxies
	s.proxies = map[string]*proxy{}
	s.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
	for _, p := range ps {
		p.wg.Wait()
	}
}
