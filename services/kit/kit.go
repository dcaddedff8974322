// Package kit runs a service: configuration, logging, tracing, metrics, database and migrations, NATS,
// the HTTP server with probes, registration in etcd while ready, and an orderly shutdown. A
// service's main.go is a call to Run.
package kit

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/kit/registry"
)

// Service is what setup receives: the opened dependencies and the places to hang routes,
// readiness checks and background workers on.
type Service struct {
	Config config.Base
	Log    *slog.Logger
	DB     *pgxpool.Pool // nil without DATABASE_URL
	NATS   *nats.Conn    // nil without NATS_URL
	Etcd   *clientv3.Client
	Mux    *http.ServeMux
	Server *httpx.Server

	mu        sync.Mutex
	inboxOnce sync.Once // see pruneInbox
	workers   []func(context.Context) error
	resolver  *registry.Resolver
	picker    registry.Picker
	proxies   map[string]string // UPSTREAM_PROXIES: service → proxy address
}

// AddCheck adds a readiness check: the instance is ready (and registered) only while every check
// returns nil.
func (s *Service) AddCheck(name string, fn func(ctx context.Context) error) {
	s.Server.AddCheck(name, fn)
}

// Go runs fn in the background once the server is up. Its context ends at shutdown, after HTTP
// has drained and before the database closes. A worker failing with an error other than the
// context's stops the service.
func (s *Service) Go(fn func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.workers = append(s.workers, fn)
}

// Upstream returns a registry-resolved, breaker-wrapped client for the named service.
func (s *Service) Upstream(name string, opts client.Options) *client.Client {
	return client.New(name, s.Picker(), opts)
}

// Picker resolves services: through a watch on etcd when ETCD_ENDPOINTS is set, otherwise it
// knows no instances.
func (s *Service) Picker() registry.Picker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.picker == nil {
		if s.Etcd != nil {
			s.resolver = registry.NewResolver(s.Etcd, s.Log)
			s.picker = s.resolver
		} else {
			s.picker = registry.NewStatic(nil)
		}
		if len(s.proxies) > 0 {
			s.picker = registry.NewProxied(s.picker, s.proxies)
		}
	}
	return s.picker
}

// Resolver is the etcd-backed resolver (started on first use), nil without ETCD_ENDPOINTS.
func (s *Service) Resolver() *registry.Resolver {
	s.Picker()
	return s.resolverIfStarted()
}

func (s *Service) resolverIfStarted() *registry.Resolver {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolver
}

func (s *Service) takeWorkers() []func(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]func(context.Context) error(nil), s.workers...)
}
