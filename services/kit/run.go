package kit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel"
	"go.uber.org/zap"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/kit/logx"
	"github.com/msctl/msctl/services/kit/metrics"
	"github.com/msctl/msctl/services/kit/pg"
	"github.com/msctl/msctl/services/kit/registry"
	"github.com/msctl/msctl/services/kit/tracing"
)

// registerInterval is how often readiness is re-evaluated for the registry.
const registerInterval = time.Second

// leaveGrace is how long a deregistered instance keeps serving before it
// stops accepting connections: callers' registry watches learn of the
// deregistration within milliseconds.
const leaveGrace = 250 * time.Millisecond

// Run runs the service until SIGTERM or SIGINT and exits the process: 0 after a clean shutdown,
// 1 when anything fails. migrations is the service's embedded migrations (nil for none); a service
// with migrations keeps its state in Postgres, so it refuses to start without DATABASE_URL and its
// setup may rely on s.DB.
func Run(name string, migrations fs.FS, setup func(ctx context.Context, s *Service) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := RunContext(ctx, name, migrations, setup)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// RunContext is Run until ctx ends, returning instead of exiting.
func RunContext(ctx context.Context, name string, migrations fs.FS, setup func(ctx context.Context, s *Service) error) error {
	var cfg config.Base
	if err := config.Load(&cfg); err != nil {
		return err
	}
	if migrations != nil && cfg.DatabaseURL == "" {
		return fmt.Errorf("%s needs a database: set DATABASE_URL", name)
	}
	proxies, err := registry.ParseProxies(cfg.UpstreamProxies)
	if err != nil {
		return err
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = name
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = cfg.ServiceName + "-" + randomID()
	}
	log := logx.New(cfg.ServiceName, cfg.LogLevel, os.Stdout).With("instance", cfg.InstanceID)
	slog.SetDefault(log)

	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	otel.SetErrorHandler(&telemetryErrors{log: log, every: time.Minute})
	shutdownTracing, err := tracing.Setup(ctx, cfg.ServiceName, cfg.OTLPEndpoint)
	if err != nil {
		return err
	}
	closers = append(closers, flush(log, "flush traces", shutdownTracing))

	mtr, err := metrics.Setup(ctx, cfg.ServiceName, cfg.OTLPEndpoint, metrics.WithInstance(cfg.InstanceID))
	if err != nil {
		return err
	}
	closers = append(closers, flush(log, "flush metrics", mtr.Shutdown))

	srv := httpx.New(httpx.Options{Service: cfg.ServiceName, Logger: log, MaxBodyBytes: cfg.MaxBodyBytes})
	srv.HandleMetrics(mtr.Handler())
	s := &Service{Config: cfg, Log: log, Mux: srv.Mux, Server: srv, proxies: proxies}

	startCtx, cancelStart := context.WithTimeout(ctx, 60*time.Second)
	defer cancelStart()
	if cfg.DatabaseURL != "" {
		db, err := pg.Open(startCtx, cfg.DatabaseURL, migrations)
		if err != nil {
			return err
		}
		s.DB = db
		closers = append(closers, db.Close)
		s.AddCheck("postgres", db.Ping)
	}
	if cfg.NATSURL != "" {
		nc, closeNATS, err := connectNATS(cfg, log)
		if err != nil {
			return err
		}
		s.NATS = nc
		closers = append(closers, closeNATS)
		s.AddCheck("nats", func(context.Context) error {
			if !nc.IsConnected() {
				return fmt.Errorf("not connected (%s)", nc.Status())
			}
			return nil
		})
	}
	if len(cfg.EtcdEndpoints) > 0 {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   cfg.EtcdEndpoints,
			DialTimeout: 2 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return fmt.Errorf("create etcd client: %w", err)
		}
		s.Etcd = cli
		closers = append(closers, func() { _ = cli.Close() })
		// Closed before the etcd client it watches through.
		closers = append(closers, func() {
			if r := s.resolverIfStarted(); r != nil {
				r.Close()
			}
		})
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()
	if s.Config.AdvertiseAddr == "" {
		s.Config.AdvertiseAddr = advertise(ln.Addr())
	}

	if err := setup(ctx, s); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return serve(ctx, s, ln)
}

// flush is a closer that runs shutdown (a telemetry exporter's last export) for at most 3s: the
// receiver may already be gone, and exiting must not wait for it.
func flush(log *slog.Logger, what string, shutdown func(context.Context) error) func() {
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn(what, "err", err)
		}
	}
}

func serve(ctx context.Context, s *Service, ln net.Listener) error {
	log := s.Log
	fail := make(chan error, 1)
	report := func(err error) {
		select {
		case fail <- err:
		default:
		}
	}

	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := s.Server.Serve(ln); err != nil {
			report(err)
		}
	}()
	log.Info("serving", "addr", ln.Addr().String(), "advertise", s.Config.AdvertiseAddr)

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var workers sync.WaitGroup
	for _, w := range s.takeWorkers() {
		workers.Go(func() {
			if err := w(workCtx); err != nil && workCtx.Err() == nil {
				report(fmt.Errorf("background worker: %w", err))
			}
		})
	}

	regCtx, stopReg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReg()
	registered := make(chan struct{})
	var reg *registry.Registrar
	if s.Etcd != nil {
		reg = registry.NewRegistrar(s.Etcd, registry.Instance{
			ID:      s.Config.InstanceID,
			Service: s.Config.ServiceName,
			Addr:    s.Config.AdvertiseAddr,
		}, s.Config.RegistryTTL, log)
		s.Server.SetOnReady(func(context.Context) {
			// Bounded by regCtx: once shutdown began, a late probe must
			// not register again. A failure is the loop's to retry.
			rctx, cancel := context.WithTimeout(regCtx, time.Second)
			defer cancel()
			_ = reg.Register(rctx)
		})
		go func() {
			defer close(registered)
			reg.Run(regCtx, s.Server.Ready, registerInterval)
		}()
	} else {
		close(registered)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-fail:
		log.Error("stopping after failure", "err", runErr)
	}

	// Leave the registry first so no new traffic is routed here, then drain HTTP, then stop
	// workers; the deferred closers finally close NATS, etcd and the database.
	s.Server.SetDraining()
	wasRegistered := reg != nil && reg.Registered()
	stopReg()
	<-registered
	if wasRegistered {
		// Callers pick instances from their watch of the registry: keep
		// serving while the deregistration reaches them, so that a request
		// routed here just before does not find the listener closed.
		time.Sleep(leaveGrace)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
	defer cancel()
	if err := s.Server.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	<-served
	stopWork()
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		log.Warn("background workers did not stop in time")
	}
	log.Info("stopped")
	return runErr
}

func connectNATS(cfg config.Base, log *slog.Logger) (*nats.Conn, func(), error) {
	closed := make(chan struct{})
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name(cfg.InstanceID),
		// Keep trying forever: readiness reports the outage, and the registry follows readiness.
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS_URL %s: %w", cfg.NATSURL, err)
	}
	closeFn := func() {
		// Drain flushes pending publishes; without a connection there is nothing to flush.
		if !nc.IsConnected() || nc.Drain() != nil {
			nc.Close()
			return
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			nc.Close()
		}
	}
	return nc, closeFn, nil
}

// advertise turns the listen address into one others can dial: a wildcard host becomes loopback.
func advertise(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
