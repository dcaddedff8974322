package runtimetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/msctl/msctl/internal/runtime"
)

// restartInfra writes a row, a stream message and a key, crashes each
// infra component in turn and restarts it: the data is back, on the same
// host endpoints.
func restartInfra(t *testing.T, rt runtime.Runtime, inf runtime.Infra, crash Crash) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dsn, err := rt.EnsureDatabase(ctx, "gamma")
	if err != nil {
		t.Fatal(err)
	}
	pgExec(t, ctx, hostDSN(t, dsn, inf), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('row')")
	withJetStream(t, inf, func(js nats.JetStreamContext) {
		if _, err := js.AddStream(&nats.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}, Storage: nats.FileStorage}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish("kept.msg", []byte("message")); err != nil {
			t.Fatal(err)
		}
	})
	withEtcd(t, ctx, inf, func(cli *clientv3.Client) {
		if _, err := cli.Put(ctx, "/msctl/kept", "key"); err != nil {
			t.Fatal(err)
		}
	})

	for _, c := range runtime.InfraComponents {
		crash(t, rt, c)
		begin := time.Now()
		got, err := rt.RestartInfra(ctx, c)
		if err != nil {
			t.Fatalf("RestartInfra(%s): %v", c, err)
		}
		t.Logf("%s restarted in %s", c, time.Since(begin).Round(time.Millisecond))
		if got.Host.Postgres != inf.Host.Postgres || got.Host.NATSURL != inf.Host.NATSURL || strings.Join(got.Host.Etcd, ",") != strings.Join(inf.Host.Etcd, ",") {
			t.Errorf("after restarting %s the host endpoints are %+v, want the same as before, %+v", c, got.Host, inf.Host)
		}
		inf = got
	}

	var v string
	conn, err := pgx.Connect(ctx, hostDSN(t, dsn, inf))
	if err != nil {
		t.Fatalf("postgres after restart: %v", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "row" {
		t.Errorf("row after restart = %q, %v; want row", v, err)
	}
	withJetStream(t, inf, func(js nats.JetStreamContext) {
		m, err := js.GetLastMsg("KEPT", "kept.msg")
		if err != nil || string(m.Data) != "message" {
			t.Errorf("stream message after restart: %v, %v; want message", m, err)
		}
	})
	withEtcd(t, ctx, inf, func(cli *clientv3.Client) {
		resp, err := cli.Get(ctx, "/msctl/kept")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "key" {
			t.Errorf("key after restart: %v, %v; want key", resp, err)
		}
	})

	if _, err := rt.RestartInfra(ctx, "redis"); err == nil || !strings.Contains(err.Error(), "postgres, nats, etcd") {
		t.Errorf("RestartInfra(redis) = %v, want an error naming the infra components", err)
	}
}

func pgExec(t *testing.T, ctx context.Context, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func withJetStream(t *testing.T, inf runtime.Infra, f func(nats.JetStreamContext)) {
	t.Helper()
	nc, err := nats.Connect(inf.Host.NATSURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("nats at %s: %v", inf.Host.NATSURL, err)
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.MaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	f(js)
}

func withEtcd(t *testing.T, ctx context.Context, inf runtime.Infra, f func(*clientv3.Client)) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: inf.Host.Etcd, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd at %v: %v", inf.Host.Etcd, err)
	}
	defer cli.Close()
	f(cli)
}
