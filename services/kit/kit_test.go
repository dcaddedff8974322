package kit_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/msctl/msctl/internal/infra/embnats"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/registry"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var migrations = fstest.MapFS{
	"00001_init.sql": {Data: []byte("-- +goose Up\nCREATE TABLE things (id int PRIMARY KEY);\n-- +goose Down\nDROP TABLE things;\n")},
}

// TestRunLifecycle runs a whole service through kit.RunContext against real Postgres, NATS and
// etcd: migrations applied, registered once ready, deregistered while a check fails or NATS is
// gone, and on shutdown deregistered before the workers stop.
func TestRunLifecycle(t *testing.T) {
	lookup, _ := serviceEnv(t)
	// Metrics go to a receiver of the test, with an interval longer than the test: only the flush
	// at shutdown exports them.
	var metricPosts atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); r.URL.Path == "/v1/metrics" && len(b) > 0 {
			metricPosts.Add(1)
		}
	}))
	defer receiver.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", receiver.URL+"/v1/metrics")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")
	var healthy atomic.Bool
	healthy.Store(true)
	var workerStopped atomic.Bool
	var registeredAtWorkerStop atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- kit.RunContext(ctx, "things", migrations, func(ctx context.Context, s *kit.Service) error {
			if s.DB == nil || s.NATS == nil || s.Etcd == nil {
				t.Errorf("dependencies not opened: db %v nats %v etcd %v", s.DB != nil, s.NATS != nil, s.Etcd != nil)
			}
			if _, err := s.DB.Exec(ctx, `INSERT INTO things VALUES (1)`); err != nil {
				return err
			}
			s.Mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {})
			s.AddCheck("toggle", func(context.Context) error {
				if !healthy.Load() {
					return errors.New("toggled off")
				}
				return nil
			})
			s.Go(func(ctx context.Context) error {
				<-ctx.Done()
				registeredAtWorkerStop.Store(lookup() != nil)
				workerStopped.Store(true)
				return nil
			})
			return nil
		})
	}()

	var in *registry.Instance
	testenv.Until(t, 10*time.Second, "registered once ready", func() bool { in = lookup(); return in != nil })
	if in.Service != "things" || in.ID != "things-1" || in.StartedAt.IsZero() {
		t.Fatalf("registration = %+v", in)
	}
	resp, err := http.Get("http://" + in.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, check := range []string{"postgres", "nats", "toggle"} {
		if !strings.Contains(string(body), `"`+check+`":"ok"`) {
			t.Fatalf("readyz %d %s lacks a passing %s check", resp.StatusCode, body, check)
		}
	}

	if resp, err := http.Get("http://" + in.Addr + "/things/1"); err == nil {
		resp.Body.Close()
	}
	resp, err = http.Get("http://" + in.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/things/{id}"`; !strings.Contains(string(body), want) {
		t.Fatalf("GET /metrics %d lacks %s:\n%s", resp.StatusCode, want, body)
	}

	healthy.Store(false)
	testenv.Until(t, 5*time.Second, "deregistered while unready", func() bool { return lookup() == nil })
	healthy.Store(true)
	testenv.Until(t, 5*time.Second, "registered again", func() bool { return lookup() != nil })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunContext: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("RunContext did not return after cancel")
	}
	if !workerStopped.Load() || registeredAtWorkerStop.Load() {
		t.Fatalf("worker stopped %v, still registered when it stopped %v; want deregistration first", workerStopped.Load(), registeredAtWorkerStop.Load())
	}
	if lookup() != nil {
		t.Fatal("still registered after shutdown")
	}
	if metricPosts.Load() == 0 {
		t.Fatal("metrics were not flushed at shutdown")
	}
	if _, err := http.Get("http://" + in.Addr + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestDeregisteredWhileNATSIsDown(t *testing.T) {
	lookup, nats := serviceEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- kit.RunContext(ctx, "things", migrations, func(context.Context, *kit.Service) error { return nil })
	}()
	testenv.Until(t, 10*time.Second, "registered once ready", func() bool { return lookup() != nil })
	nats.Shutdown()
	testenv.Until(t, 5*time.Second, "deregistered without NATS", func() bool { return lookup() == nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunContext: %v", err)
	}
}

// A consumer waiting out an unavailable dependency (here a real "no
// responders" from NATS on every try) makes the instance unready, so it
// leaves the registry; it comes back by itself once the handler succeeds.
func TestUnreadyWhileAConsumerWaitsOutADependency(t *testing.T) {
	lookup, _ := serviceEnv(t)
	var broken atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	buses := make(chan *bus.Bus, 1)
	done := make(chan error, 1)
	go func() {
		done <- kit.RunContext(ctx, "things", migrations, func(ctx context.Context, s *kit.Service) error {
			b, err := s.Bus(ctx)
			if err != nil {
				return err
			}
			s.Consume(b, bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "things", Subjects: []string{"payments.cmd.>"}},
				func(context.Context, bus.Message) error {
					if broken.Load() {
						_, err := s.NATS.Request("nobody.listens", nil, time.Second)
						return err
					}
					return nil
				})
			buses <- b
			return nil
		})
	}()
	b := <-buses
	var in *registry.Instance
	testenv.Until(t, 10*time.Second, "registered once ready", func() bool { in = lookup(); return in != nil })

	broken.Store(true)
	env, err := events.New(events.PaymentsCharge, events.ChargePayment{OrderID: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(env)
	if err := b.Publish(ctx, env, raw); err != nil {
		t.Fatal(err)
	}
	testenv.Until(t, 10*time.Second, "deregistered while the consumer is stalled", func() bool { return lookup() == nil })
	resp, err := http.Get("http://" + in.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), "consumer things paused") {
		t.Fatalf("readyz %d %s does not name the stalled consumer", resp.StatusCode, body)
	}

	broken.Store(false)
	testenv.Until(t, 15*time.Second, "registered again once it resumed", func() bool { return lookup() != nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunContext: %v", err)
	}
}

// serviceEnv points kit at fresh Postgres, NATS and etcd and returns a lookup of the
// registration of instance things-1.
func serviceEnv(t *testing.T) (func() *registry.Instance, *embnats.Server) {
	t.Helper()
	etcd := testenv.Etcd(t)
	nats := testenv.NATS(t)
	t.Setenv("SERVICE_NAME", "things")
	t.Setenv("INSTANCE_ID", "things-1")
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("ADVERTISE_ADDR", "")
	t.Setenv("ETCD_ENDPOINTS", strings.Join(etcd.Endpoints(), ","))
	t.Setenv("NATS_URL", nats.URL())
	t.Setenv("DATABASE_URL", testenv.Database(t, "kit_run"))
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("REGISTRY_TTL", "2s")
	t.Setenv("LOG_LEVEL", "warn")

	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	key := registry.Key("things", "things-1")
	lookup := func() *registry.Instance {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count == 0 {
			return nil
		}
		var in registry.Instance
		if err := json.Unmarshal(resp.Kvs[0].Value, &in); err != nil {
			t.Fatal(err)
		}
		return &in
	}
	return lookup, nats
}

func TestRunFailsFastOnBadConfig(t *testing.T) {
	t.Setenv("REGISTRY_TTL", "five seconds")
	err := kit.RunContext(context.Background(), "bad", nil, func(context.Context, *kit.Service) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "REGISTRY_TTL") {
		t.Fatalf("RunContext = %v, want an error naming REGISTRY_TTL", err)
	}
}

func TestRunRefusesMigrationsWithoutDatabase(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	err := kit.RunContext(context.Background(), "things", migrations, func(context.Context, *kit.Service) error {
		t.Error("setup ran without a database")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "things needs a database: set DATABASE_URL") {
		t.Fatalf("RunContext = %v, want an error naming DATABASE_URL", err)
	}
}
