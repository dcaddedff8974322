package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Registrar keeps one instance registered under a lease while it is ready.
type Registrar struct {
	cli  *clientv3.Client
	inst Instance
	ttl  time.Duration
	log  *slog.Logger

	mu       sync.Mutex
	lease    clientv3.LeaseID
	stopKA   context.CancelFunc
	kaClosed chan struct{}
}

// NewRegistrar prepares a registration of inst with a lease of ttl (rounded up to whole seconds,
// at least one).
func NewRegistrar(cli *clientv3.Client, inst Instance, ttl time.Duration, log *slog.Logger) *Registrar {
	if log == nil {
		log = slog.Default()
	}
	if inst.StartedAt.IsZero() {
		inst.StartedAt = time.Now().UTC()
	}
	return &Registrar{cli: cli, inst: inst, ttl: ttl, log: log}
}

// Instance is the registration this Registrar writes.
func (r *Registrar) Instance() Instance { return r.inst }

// Registered reports whether the key is believed present: registered and the keep-alive still
// running.
func (r *Registrar) Registered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.registeredLocked()
}

func (r *Registrar) registeredLocked() bool {
	if r.lease == 0 {
		return false
	}
	select {
	case <-r.kaClosed:
		return false
	default:
		return true
	}
}

// Register grants a lease, writes the key and keeps the lease alive until Deregister. It is a
// no-op while registered; after a lost keep-alive it registers afresh.
func (r *Registrar) Register(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.registeredLocked() {
		return nil
	}
	r.stopLocked()
	secs := int64(math.Ceil(r.ttl.Seconds()))
	if secs < 1 {
		secs = 1
	}
	grant, err := r.cli.Grant(ctx, secs)
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	val, err := json.Marshal(r.inst)
	if err != nil {
		return fmt.Errorf("encode registration: %w", err)
	}
	key := Key(r.inst.Service, r.inst.ID)
	if _, err := r.cli.Put(ctx, key, string(val), clientv3.WithLease(grant.ID)); err != nil {
		r.revoke(grant.ID)
		return fmt.Errorf("put %s: %w", key, err)
	}
	kaCtx, stop := context.WithCancel(context.Background())
	ch, err := r.cli.KeepAlive(kaCtx, grant.ID)
	if err != nil {
		stop()
		r.revoke(grant.ID)
		return fmt.Errorf("keep lease alive: %w", err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for range ch {
		}
	}()
	r.lease, r.stopKA, r.kaClosed = grant.ID, stop, closed
	r.log.Info("registered", "key", key, "addr", r.inst.Addr, "ttl", secs)
	return nil
}

// Deregister stops the keep-alive and revokes the lease, which deletes the key at once.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	lease := r.lease
	r.stopLocked()
	if lease == 0 {
		return nil
	}
	if _, err := r.cli.Revoke(ctx, lease); err != nil {
		// The lease still expires after its TTL, so the key goes away regardless.
		return fmt.Errorf("revoke lease: %w", err)
	}
	r.log.Info("deregistered", "key", Key(r.inst.Service, r.inst.ID))
	return nil
}

func (r *Registrar) stopLocked() {
	if r.stopKA != nil {
		r.stopKA()
	}
	r.lease, r.stopKA, r.kaClosed = 0, nil, nil
}

func (r *Registrar) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = r.cli.Revoke(ctx, id)
}

// Run registers while ready(ctx) returns nil and deregisters while it fails, checking every
// interval, until ctx ends; then it deregisters. Registration failures (etcd down) are logged and
// retried on the next tick.
func (r *Registrar) Run(ctx context.Context, ready func(context.Context) error, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	lastErr := ""
	for {
		r.tick(ctx, ready, interval, &lastErr)
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := r.Deregister(dctx); err != nil {
				r.log.Warn("deregister on shutdown", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
	}
}

func (r *Registrar) tick(ctx context.Context, ready func(context.Context) error, interval time.Duration, lastErr *string) {
	cctx, cancel := context.WithTimeout(ctx, max(interval, 2*time.Second))
	defer cancel()
	if err := ready(cctx); err != nil {
		if r.Registered() {
			r.log.Warn("not ready, deregistering", "err", err)
			if err := r.Deregister(cctx); err != nil {
				r.log.Warn("deregister", "err", err)
			}
		}
		return
	}
	if r.Registered() {
		*lastErr = ""
		return
	}
	if err := r.Register(cctx); err != nil {
		// Log each distinct failure once, so an etcd outage does not flood the log.
		if msg := err.Error(); msg != *lastErr && ctx.Err() == nil {
			r.log.Warn("register failed, will retry", "err", err)
			*lastErr = msg
		}
		return
	}
	*lastErr = ""
}
