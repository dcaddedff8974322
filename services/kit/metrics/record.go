package metrics

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The instruments' names, units and attributes are the contract with the agent, which reads them
// by these names: change them together with internal/agent.
const (
	ServerDuration  = "http.server.request.duration"
	ClientDuration  = "http.client.request.duration"
	ProcessDuration = "messaging.process.duration"
	ConsumerLag     = "messaging.consumer.lag"

	AttrMethod      = "http.request.method"
	AttrRoute       = "http.route"
	AttrStatus      = "http.response.status_code"
	AttrPeer        = "peer.service"
	AttrErrorType   = "error.type"
	AttrDestination = "messaging.destination.name"
	AttrGroup       = "messaging.consumer.group.name"
)

// Unmatched is the http.route of a request no route served.
const Unmatched = "unmatched"

// DurationBuckets are the explicit bucket boundaries, in seconds, of every duration histogram:
// 0.5 ms to 10 s, fine enough around the usual latencies for the agent to interpolate p50 and p99.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

const scope = "github.com/msctl/msctl/services/kit/metrics"

// current holds the instruments of the provider Setup installed last; nil (before Setup, after
// Shutdown) makes recording a no-op costing one atomic load.
var current atomic.Pointer[instruments]

type instruments struct {
	server, client, process metric.Float64Histogram
	lag                     metric.Registration
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter(scope)
	var in instruments
	var err error
	histogram := func(name, desc string) metric.Float64Histogram {
		h, e := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(DurationBuckets...))
		if e != nil && err == nil {
			err = fmt.Errorf("create instrument %s: %w", name, e)
		}
		return h
	}
	in.server = histogram(ServerDuration, "Duration of HTTP requests served, per route.")
	in.client = histogram(ClientDuration, "Duration of calls to upstream services, per peer.")
	in.process = histogram(ProcessDuration, "Duration of message handler runs, per subject and consumer.")
	if err != nil {
		return nil, err
	}
	gauge, err := m.Int64ObservableGauge(ConsumerLag, metric.WithUnit("{message}"),
		metric.WithDescription("Messages of a durable consumer not yet delivered or not yet acknowledged."))
	if err != nil {
		return nil, fmt.Errorf("create instrument %s: %w", ConsumerLag, err)
	}
	in.lag, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		observeLag(ctx, func(v int64, opt metric.ObserveOption) { o.ObserveInt64(gauge, v, opt) })
		return nil
	}, gauge)
	if err != nil {
		return nil, fmt.Errorf("register %s callback: %w", ConsumerLag, err)
	}
	return &in, nil
}

func (in *instruments) unregister() { _ = in.lag.Unregister() }

// maxSets bounds each cache of attribute sets; past it sets are built per recording (correct,
// only slower), so a flood of odd labels cannot grow memory without bound.
const maxSets = 2048

// key is a combination of attribute values whose attribute set is built once.
type key interface {
	comparable
	set() attribute.Set
}

// attrCache keeps the record options of each attribute combination seen: recording then allocates
// nothing (the variadic slice passed to Record is the cached one too).
type attrCache[K key] struct {
	mu sync.RWMutex
	m  map[K][]metric.RecordOption
}

func (c *attrCache[K]) get(k K) []metric.RecordOption {
	c.mu.RLock()
	opts, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return opts
	}
	opts = []metric.RecordOption{metric.WithAttributeSet(k.set())}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[K][]metric.RecordOption{}
	}
	if len(c.m) < maxSets {
		c.m[k] = opts
	}
	c.mu.Unlock()
	return opts
}

type serverKey struct {
	method, route string
	status        int
}

func (k serverKey) set() attribute.Set {
	return attribute.NewSet(attribute.String(AttrMethod, k.method), attribute.String(AttrRoute, k.route),
		attribute.Int(AttrStatus, k.status))
}

var serverSets attrCache[serverKey]

// HTTPServer records one request served: method, route template ("" for none: Unmatched),
// status and duration. Callers leave out probe and /metrics requests.
func HTTPServer(ctx context.Context, method, route string, status int, d time.Duration) {
	in := current.Load()
	if in == nil {
		return
	}
	if route == "" {
		route = Unmatched
	}
	in.server.Record(ctx, d.Seconds(), serverSets.get(serverKey{Method(method), route, status})...)
}

type clientKey struct {
	method, peer string
	status       int
	errType      string
}

func (k clientKey) set() attribute.Set {
	kvs := []attribute.KeyValue{attribute.String(AttrMethod, k.method), attribute.String(AttrPeer, k.peer)}
	if k.errType != "" {
		kvs = append(kvs, attribute.String(AttrErrorType, k.errType))
	} else {
		kvs = append(kvs, attribute.Int(AttrStatus, k.status))
	}
	return attribute.NewSet(kvs...)
}

var clientSets attrCache[clientKey]

// HTTPClient records one call to the upstream peer: its answer's status, or errType (e.g.
// "breaker_open", "timeout", "connection") when no answer came.
func HTTPClient(ctx context.Context, method, peer string, status int, errType string, d time.Duration) {
	in := current.Load()
	if in == nil {
		return
	}
	in.client.Record(ctx, d.Seconds(), clientSets.get(clientKey{Method(method), peer, status, errType})...)
}

type processKey struct {
	subject, group, errType string
}

func (k processKey) set() attribute.Set {
	kvs := []attribute.KeyValue{attribute.String(AttrDestination, k.subject), attribute.String(AttrGroup, k.group)}
	if k.errType != "" {
		kvs = append(kvs, attribute.String(AttrErrorType, k.errType))
	}
	return attribute.NewSet(kvs...)
}

var processSets attrCache[processKey]

// Process records one handler run for a message of subject by the durable consumer group;
// errType is empty when the handler succeeded.
func Process(ctx context.Context, subject, group, errType string, d time.Duration) {
	in := current.Load()
	if in == nil {
		return
	}
	in.process.Record(ctx, d.Seconds(), processSets.get(processKey{subject, group, errType})...)
}

// Method is the http.request.method value of m: the known methods as they are, anything else
// "_OTHER" (OpenTelemetry's convention), so a client inventing methods cannot add series.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch,
		http.MethodHead, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
