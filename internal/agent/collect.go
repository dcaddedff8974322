package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/services/kit/breakers"
	"github.com/msctl/msctl/services/kit/registry"
)

// maxConsumers bounds the consumers whose deliveries are counted: every ordered consumer (a
// FullHistory read, a `nats sub`) is a new name, and the table must not grow with them.
const maxConsumers = 500

// pollEvery is the rate of the breaker and registry pollers.
const pollEvery = time.Second

// collector gathers what the agent learns from the running system:
// breaker states, registry entries, broker events and the DLQ depth. Each
// source has its own goroutine; readers get copies.
type collector struct {
	mu       sync.Mutex
	breakers map[string][]state.Breaker // by service
	registry map[string][]state.Instance
	events   []state.Event // ring, oldest first
	maxEvts  int
	dlqDepth uint64
	// deliveries by stream and consumer, at most maxConsumers of them.
	deliveries map[[2]string]*state.Delivery
}

func newCollector(maxEvents int) *collector {
	return &collector{breakers: map[string][]state.Breaker{}, registry: map[string][]state.Instance{}, maxEvts: maxEvents,
		deliveries: map[[2]string]*state.Delivery{}}
}

func (c *collector) snapshot(s *state.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.breakers))
	for n := range c.breakers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s.Breakers = append(s.Breakers, c.breakers[n]...)
	}
	s.Registry = make(map[string][]state.Instance, len(c.registry))
	for k, v := range c.registry {
		s.Registry[k] = append([]state.Instance(nil), v...)
	}
	s.Events = append([]state.Event(nil), c.events...)
	s.DLQDepth = c.dlqDepth
	s.Deliveries = s.Deliveries[:0]
	for _, d := range c.deliveries {
		s.Deliveries = append(s.Deliveries, *d)
	}
	sort.Slice(s.Deliveries, func(i, j int) bool {
		a, b := s.Deliveries[i], s.Deliveries[j]
		return a.Stream < b.Stream || a.Stream == b.Stream && a.Consumer < b.Consumer
	})
}

// delivered counts a JetStream delivery to a consumer, which the `>` subscription sees as a copy
// of the message under its original subject, answerable on a $JS.ACK reply that names the
// stream, the consumer and the delivery count.
func (c *collector) delivered(m *nats.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := [2]string{meta.Stream, meta.Consumer}
	d := c.deliveries[key]
	if d == nil {
		if len(c.deliveries) >= maxConsumers {
			return
		}
		d = &state.Delivery{Stream: meta.Stream, Consumer: meta.Consumer}
		c.deliveries[key] = d
	}
	if meta.NumDelivered > 1 {
		d.Redelivered++
	} else {
		d.Delivered++
	}
}

var pollClient = &http.Client{Timeout: 800 * time.Millisecond}

// pollBreakers asks every service with an endpoint for its breakers, once
// a second, until ctx ends. endpoints returns service → host:port.
func (c *collector) pollBreakers(ctx context.Context, endpoints func() map[string]string) {
	everyPoll(ctx, func(ctx context.Context) {
		var wg sync.WaitGroup
		for svc, ep := range endpoints() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				bs, err := fetchBreakers(ctx, svc, ep)
				if err != nil {
					return // keep the last known states; ps shows health
				}
				c.mu.Lock()
				c.breakers[svc] = bs
				c.mu.Unlock()
			}()
		}
		wg.Wait()
	})
}

// everyPoll runs round once every pollEvery until ctx ends, each round
// bounded by pollEvery so that a hung dependency cannot stall the loop.
func everyPoll(ctx context.Context, round func(ctx context.Context)) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, pollEvery)
		round(rctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func fetchBreakers(ctx context.Context, svc, ep string) ([]state.Breaker, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep+"/debug/breakers", nil)
	if err != nil {
		return nil, err
	}
	resp, err := pollClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, io.ErrUnexpectedEOF
	}
	var raw []breakers.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&raw); err != nil {
		return nil, err
	}
	out := make([]state.Breaker, 0, len(raw))
	for _, b := range raw {
		br := state.Breaker{
			Service: svc, Name: b.Name, State: b.State, Requests: b.Requests,
			TotalSuccesses: b.TotalSuccesses, TotalFailures: b.TotalFailures,
			ConsecutiveFailures: b.ConsecutiveFailures,
		}
		if b.OpenUntil != nil {
			br.OpenUntil = *b.OpenUntil
		}
		out = append(out, br)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// pollRegistry reads the registry prefix once a second. Polling rather than
// watching keeps the snapshot right even across an etcd restart.
func (c *collector) pollRegistry(ctx context.Context, cli *clientv3.Client) {
	everyPoll(ctx, func(ctx context.Context) {
		resp, err := cli.Get(ctx, registry.Prefix, clientv3.WithPrefix())
		if err == nil {
			reg := map[string][]state.Instance{}
			for _, kv := range resp.Kvs {
				var in state.Instance
				if json.Unmarshal(kv.Value, &in) != nil {
					continue
				}
				if in.Service == "" {
					// Key layout: /msctl/registry/<service>/<instance>.
					in.Service, _, _ = strings.Cut(strings.TrimPrefix(string(kv.Key), registry.Prefix), "/")
				}
				reg[in.Service] = append(reg[in.Service], in)
			}
			for _, ins := range reg {
				sort.Slice(ins, func(i, j int) bool { return ins[i].ID < ins[j].ID })
			}
			c.mu.Lock()
			c.registry = reg
			c.mu.Unlock()
		}
	})
}

// watchEvents records every application message on the broker once, as it
// is published. It subscribes to everything and skips the system's own
// traffic ($JS, $SYS, inboxes); JetStream's deliveries to consumers arrive
// as copies of the message and are counted per consumer instead. The stream
// of a subject is looked up once and cached.
func (c *collector) watchEvents(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var smu sync.Mutex
	streams := map[string]string{}
	streamOf := func(subject string) string {
		smu.Lock()
		s, ok := streams[subject]
		smu.Unlock()
		if ok {
			return s
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		s, _ = js.StreamNameBySubject(lctx, subject)
		smu.Lock()
		if len(streams) > 10000 {
			clear(streams)
		}
		streams[subject] = s
		smu.Unlock()
		return s
	}
	msgs := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(">", msgs)
	if err != nil {
		return err
	}
	go func() {
		defer sub.Unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				if strings.HasPrefix(m.Subject, "$") || strings.HasPrefix(m.Subject, "_INBOX.") {
					continue
				}
				if strings.HasPrefix(m.Reply, "$JS.ACK.") {
					c.delivered(m)
					continue
				}
				ev := state.Event{Time: time.Now(), Subject: m.Subject, Size: len(m.Data)}
				if m.Header != nil {
					ev.MsgID = m.Header.Get(jetstream.MsgIDHeader)
				}
				ev.Stream = streamOf(m.Subject)
				c.mu.Lock()
				c.events = append(c.events, ev)
				if over := len(c.events) - c.maxEvts; over > 0 {
					c.events = append(c.events[:0:0], c.events[over:]...)
				}
				c.mu.Unlock()
			}
		}
	}()
	return nil
}
