package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// These tests prove that the infra images (the offline stand-ins in CI, or the real ones)
// keep the contract msctl relies on, by talking to each server with the client msctl uses.
// Wait strategies never exec inside the container: images without a shell must work too.

const startupTimeout = 90 * time.Second

// imageContext requires Docker and bounds one image test.
func imageContext(t *testing.T) context.Context {
	t.Helper()
	RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startContainer starts req and terminates the container when the test ends.
func startContainer(t *testing.T, ctx context.Context, req testcontainers.ContainerRequest) testcontainers.Container {
	t.Helper()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req,
		Started:          true,
	})
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("start %s: %v", req.Image, err)
	}
	return ctr
}

// hostAddr is the 127.0.0.1 host:port that port of ctr is published on.
func hostAddr(t *testing.T, ctx context.Context, ctr testcontainers.Container, port string) string {
	t.Helper()
	host, err := ctr.Host(ctx)
	if err != nil {
		t.Fatalf("container host: %v", err)
	}
	mapped, err := ctr.MappedPort(ctx, port)
	if err != nil {
		t.Fatalf("mapped port %s: %v", port, err)
	}
	return fmt.Sprintf("%s:%s", host, mapped.Port())
}

func TestImagesPostgres(t *testing.T) {
	RequireDocker(t)
	tests := []struct {
		name     string
		env      map[string]string
		initSQL  string // copied into /docker-entrypoint-initdb.d when set
		user, db string
	}{
		{
			name: "defaults",
			env:  map[string]string{"POSTGRES_PASSWORD": "s3cret"},
			user: "postgres", db: "postgres",
		},
		{
			name:    "user, database and init script",
			env:     map[string]string{"POSTGRES_PASSWORD": "s3cret", "POSTGRES_USER": "msctl", "POSTGRES_DB": "app"},
			initSQL: "CREATE TABLE seeded (note text); INSERT INTO seeded VALUES ('from initdb.d');",
			user:    "msctl", db: "app",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := imageContext(t)

			req := testcontainers.ContainerRequest{
				Image:        PostgresImage,
				ExposedPorts: []string{"5432/tcp"},
				Env:          tt.env,
				// The first start logs readiness twice: once for the socket-only init
				// server, once for the real one.
				WaitingFor: wait.ForAll(
					wait.ForLog("database system is ready to accept connections").WithOccurrence(2),
					wait.ForListeningPort("5432/tcp").SkipInternalCheck(),
				).WithDeadline(startupTimeout),
			}
			if tt.initSQL != "" {
				req.Files = []testcontainers.ContainerFile{{
					Reader:            strings.NewReader(tt.initSQL),
					ContainerFilePath: "/docker-entrypoint-initdb.d/01-seed.sql",
					FileMode:          0o644,
				}}
			}
			addr := hostAddr(t, ctx, startContainer(t, ctx, req), "5432/tcp")
			dsn := func(password string) string {
				return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", tt.user, password, addr, tt.db)
			}

			if conn, err := pgx.Connect(ctx, dsn("wrong")); err == nil {
				conn.Close(ctx)
				t.Fatal("connect with a wrong password succeeded; host connections must require the password")
			}
			conn, err := pgx.Connect(ctx, dsn(tt.env["POSTGRES_PASSWORD"]))
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer conn.Close(ctx)

			if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
				t.Fatalf("create table: %v", err)
			}
			if _, err := conn.Exec(ctx, "INSERT INTO items VALUES ($1, $2)", 1, "widget"); err != nil {
				t.Fatalf("insert: %v", err)
			}
			var name string
			if err := conn.QueryRow(ctx, "SELECT name FROM items WHERE id = $1", 1).Scan(&name); err != nil {
				t.Fatalf("select: %v", err)
			}
			if name != "widget" {
				t.Fatalf("select name = %q, want %q", name, "widget")
			}
			if tt.initSQL == "" {
				return
			}
			var note string
			if err := conn.QueryRow(ctx, "SELECT note FROM seeded").Scan(&note); err != nil {
				t.Fatalf("select seeded row (init script not run in POSTGRES_DB?): %v", err)
			}
			if note != "from initdb.d" {
				t.Fatalf("seeded note = %q, want %q", note, "from initdb.d")
			}
		})
	}
}

func TestImagesNATS(t *testing.T) {
	ctx := imageContext(t)

	ctr := startContainer(t, ctx, testcontainers.ContainerRequest{
		Image:        NATSImage,
		ExposedPorts: []string{"4222/tcp", "8222/tcp"},
		// JetStream with monitoring, the way msctl runs the broker. The image's default config
		// cannot take -js: it declares a cluster without a server name, as upstream's does.
		Cmd: []string{"-js", "-sd", "/data", "-m", "8222"},
		WaitingFor: wait.ForAll(
			wait.ForLog("Server is ready"),
			wait.ForHTTP("/healthz").WithPort("8222/tcp"),
		).WithDeadline(startupTimeout),
	})

	nc, err := nats.Connect("nats://"+hostAddr(t, ctx, ctr, "4222/tcp"), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "orders.created", []byte("order-1")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:   "images-test",
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var got []string
	for msg := range batch.Messages() {
		got = append(got, string(msg.Data()))
		// DoubleAck waits for the server to confirm, so the ack is known to have landed.
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("fetch batch: %v", err)
	}
	if len(got) != 1 || got[0] != "order-1" {
		t.Fatalf("consumed %q, want [order-1]", got)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	if info.NumAckPending != 0 {
		t.Fatalf("ack pending = %d after ack, want 0", info.NumAckPending)
	}
}

func TestImagesEtcd(t *testing.T) {
	ctx := imageContext(t)

	ctr := startContainer(t, ctx, testcontainers.ContainerRequest{
		Image:        EtcdImage,
		ExposedPorts: []string{"2379/tcp"},
		Env:          map[string]string{"ALLOW_NONE_AUTHENTICATION": "yes"},
		WaitingFor: wait.ForAll(
			wait.ForLog("ready to serve client requests"),
			wait.ForHTTP("/health").WithPort("2379/tcp"),
		).WithDeadline(startupTimeout),
	})

	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"http://" + hostAddr(t, ctx, ctr, "2379/tcp")},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()

	if _, err := cli.Put(ctx, "/msctl/images-test", "ok"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/msctl/images-test")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "ok" {
		t.Fatalf("get returned %v, want one value %q", resp.Kvs, "ok")
	}
}
