package orchestrator

import (
	"fmt"
	"slices"
	"testing"
)

func TestEdges(t *testing.T) {
	var got []string
	for _, e := range Edges(loadShop(t)) {
		got = append(got, e.From+"->"+e.To)
	}
	want := []string{
		// The public service reaches every routed service, not only its depends_on.
		"gateway->nats", "gateway->etcd", "gateway->orders", "gateway->users",
		"inventory->nats", "inventory->etcd", "inventory->postgres",
		"orders->nats", "orders->etcd", "orders->inventory", "orders->users",
		"users->nats", "users->etcd", "users->postgres",
	}
	if !slices.Equal(got, want) {
		t.Errorf("edges\n got %v\nwant %v", got, want)
	}
}

// proxyRouter routes every edge but gateway->users through "proxy" ports.
type proxyRouter struct{}

func (proxyRouter) Route(from, to string) (string, bool) {
	if from == "gateway" && to == "users" {
		return "", false
	}
	return fmt.Sprintf("proxy-%s-%s:1", from, to), true
}

func TestRouterRewritesOnlyAddresses(t *testing.T) {
	f := newFake()
	o := newOrchWith(t, f, proxyRouter{})
	if err := o.Up(t.Context(), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	checkEnv(t, f, []envWant{
		{"users", "DATABASE_URL", "postgres://users@proxy-users-postgres:1/users"},
		{"users", "NATS_URL", "nats://proxy-users-nats:1"},
		{"users", "ETCD_ENDPOINTS", "http://proxy-users-etcd:1"},
		{"users", "UPSTREAM_PROXIES", ""},
		{"users", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"},
		{"orders", "UPSTREAM_PROXIES", "inventory=proxy-orders-inventory:1,users=proxy-orders-users:1"},
		{"gateway", "UPSTREAM_PROXIES", "orders=proxy-gateway-orders:1"},
	})
	if eps := o.ReadyEndpoints("orders"); len(eps) != 1 || eps[0] != f.current("orders").info.Endpoint {
		t.Errorf("ready endpoints of orders = %v, want its one instance's %s", eps, f.current("orders").info.Endpoint)
	}
	if eps := o.ReadyEndpoints("nope"); eps != nil {
		t.Errorf("ready endpoints of an unknown service = %v", eps)
	}
}

// TestRestartLeavesTheStoppingInstanceOutOfRelays: while Restart stops one
// of two replicas, relays get only the other one: the stopping one drains
// and is about to close its listener.
func TestRestartLeavesTheStoppingInstanceOutOfRelays(t *testing.T) {
	f, o := upShop(t)
	if err := o.scale(t.Context(), o.comps["users"], 2); err != nil {
		t.Fatal(err)
	}
	if eps := o.ReadyEndpoints("users"); len(eps) != 2 {
		t.Fatalf("ready endpoints of users = %v, want two", eps)
	}
	stopping := make(chan string, 1)
	release := make(chan struct{})
	f.mu.Lock()
	f.stopGate = func(ep string) {
		select {
		case stopping <- ep:
			<-release
		default:
		}
	}
	f.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- o.Restart(t.Context(), "users") }()
	leaving := <-stopping
	if eps := o.ReadyEndpoints("users"); len(eps) != 1 || eps[0] == leaving {
		t.Errorf("while %s stops, ready endpoints of users = %v, want only the other replica", leaving, eps)
	}
	f.mu.Lock()
	f.stopGate = nil
	f.mu.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if eps := o.ReadyEndpoints("users"); len(eps) != 2 || slices.Contains(eps, leaving) {
		t.Errorf("after the restart, ready endpoints of users = %v, want two new ones", eps)
	}
}
