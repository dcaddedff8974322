package registry

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var _ Picker = (*Resolver)(nil)

// Resolver mirrors the whole registry in memory through one etcd watch, so Pick never talks to
// etcd. Instances appear and vanish as their keys are written, deleted or expire.
type Resolver struct {
	cli *clientv3.Client
	log *slog.Logger

	mu       sync.RWMutex
	byKey    map[string]Instance
	services map[string][]Instance
	next     map[string]*atomic.Uint64
	synced   chan struct{}
	syncOnce sync.Once

	cancel context.CancelFunc
	done   chan struct{}
}

// NewResolver starts watching the registry; Close stops it.
func NewResolver(cli *clientv3.Client, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Resolver{
		cli:      cli,
		log:      log,
		byKey:    map[string]Instance{},
		services: map[string][]Instance{},
		next:     map[string]*atomic.Uint64{},
		synced:   make(chan struct{}),
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	go r.loop(ctx)
	return r
}

// Close stops the watch.
func (r *Resolver) Close() {
	r.cancel()
	<-r.done
}

// WaitSynced blocks until the first full listing arrived or ctx ends.
func (r *Resolver) WaitSynced(ctx context.Context) error {
	select {
	case <-r.synced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for registry sync: %w", ctx.Err())
	}
}

// Pick returns the next live instance of service, round-robin.
func (r *Resolver) Pick(service string) (Instance, error) {
	r.mu.RLock()
	list, n := r.services[service], r.next[service]
	r.mu.RUnlock()
	if len(list) == 0 {
		return Instance{}, fmt.Errorf("%w: %s", ErrNoInstances, service)
	}
	return list[int((n.Add(1)-1)%uint64(len(list)))], nil
}

// Instances returns the live instances of service sorted by id.
func (r *Resolver) Instances(service string) []Instance {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Instance(nil), r.services[service]...)
}

// All returns every live instance grouped by service.
func (r *Resolver) All() map[string][]Instance {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string][]Instance, len(r.services))
	for k, v := range r.services {
		out[k] = append([]Instance(nil), v...)
	}
	return out
}

func (r *Resolver) loop(ctx context.Context) {
	defer close(r.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		rev, err := r.list(ctx)
		if err == nil {
			backoff = 100 * time.Millisecond
			err = r.watch(ctx, rev+1)
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("registry watch interrupted, relisting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (r *Resolver) list(ctx context.Context) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := r.cli.Get(lctx, Prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("list registry: %w", err)
	}
	byKey := make(map[string]Instance, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		in, err := parse(string(kv.Key), kv.Value)
		if err != nil {
			r.log.Warn("skip registration", "err", err)
			continue
		}
		byKey[string(kv.Key)] = in
	}
	r.mu.Lock()
	r.byKey = byKey
	r.rebuildLocked()
	r.mu.Unlock()
	r.syncOnce.Do(func() { close(r.synced) })
	return resp.Header.Revision, nil
}

func (r *Resolver) watch(ctx context.Context, fromRev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range r.cli.Watch(wctx, Prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev)) {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("watch registry: %w", err)
		}
		if len(resp.Events) == 0 {
			continue
		}
		r.mu.Lock()
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			if ev.Type == clientv3.EventTypeDelete {
				delete(r.byKey, key)
				continue
			}
			in, err := parse(key, ev.Kv.Value)
			if err != nil {
				r.log.Warn("skip registration", "err", err)
				continue
			}
			r.byKey[key] = in
		}
		r.rebuildLocked()
		r.mu.Unlock()
	}
	return fmt.Errorf("watch registry: channel closed")
}

func (r *Resolver) rebuildLocked() {
	services := map[string][]Instance{}
	for _, in := range r.byKey {
		services[in.Service] = append(services[in.Service], in)
	}
	for svc, list := range services {
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		if r.next[svc] == nil {
			r.next[svc] = new(atomic.Uint64)
		}
	}
	r.services = services
}

var _ Picker = (*Static)(nil)

// Static is a fixed table of addresses, for running a service against known upstreams without a
// registry (UPSTREAM-style configuration, tools, tests).
type Static struct {
	services map[string][]Instance
	next     map[string]*atomic.Uint64
}

// NewStatic builds a Static from service name to host:port addresses.
func NewStatic(addrs map[string][]string) *Static {
	s := &Static{services: map[string][]Instance{}, next: map[string]*atomic.Uint64{}}
	for svc, list := range addrs {
		for i, a := range list {
			s.services[svc] = append(s.services[svc], Instance{ID: fmt.Sprintf("%s-%d", svc, i), Service: svc, Addr: a})
		}
		s.next[svc] = new(atomic.Uint64)
	}
	return s
}

// Pick returns the next address of service, round-robin.
func (s *Static) Pick(service string) (Instance, error) {
	list := s.services[service]
	if len(list) == 0 {
		return Instance{}, fmt.Errorf("%w: %s", ErrNoInstances, service)
	}
	return list[int((s.next[service].Add(1)-1)%uint64(len(list)))], nil
}
