package fault_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/fault"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// classify asserts the class of an error the real dependency produced.
func classify(t *testing.T, name string, err error, want bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: the dependency produced no error", name)
	}
	if got := fault.Transient(err); got != want {
		t.Errorf("%s: Transient(%v) = %v, want %v", name, err, got, want)
	}
}

func TestPostgresErrors(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Database(t, "fault")
	db, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO t VALUES (1, 0), (2, 0)`); err != nil {
		t.Fatal(err)
	}

	t.Run("statement errors are not transient", func(t *testing.T) {
		_, err := db.Exec(ctx, `INSERT INTO t VALUES (1, 0)`)
		classify(t, "unique violation", err, false)
		_, err = db.Exec(ctx, `SELEC 1`)
		classify(t, "syntax error", err, false)
	})

	t.Run("backend terminated by the server", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var pid int
		if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, `SELECT 1`)
		classify(t, "terminated backend", err, true)
	})

	t.Run("serialization failure", func(t *testing.T) {
		err := serializationFailure(t, db)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
			t.Fatalf("want a serialization failure (40001), got %v", err)
		}
		classify(t, "two serializable transactions", err, true)
	})

	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		_, err = pgx.Connect(ctx, fmt.Sprintf("postgres://x:y@127.0.0.1:%d/x?connect_timeout=2", port))
		classify(t, "connection refused", err, true)
	})

	t.Run("deadline of a dependency call", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := db.Exec(cctx, `SELECT pg_sleep(2)`)
		classify(t, "query past its deadline", err, true)
	})

	t.Run("closed pool", func(t *testing.T) {
		p, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		_, err = p.Exec(ctx, `SELECT 1`)
		classify(t, "closed pool", err, true)
	})

	t.Run("permanent wins", func(t *testing.T) {
		_, err := pgx.Connect(ctx, "postgres://x:y@127.0.0.1:1/x?connect_timeout=2")
		classify(t, "connection refused wrapped by Permanent", fault.Permanent(err), false)
	})
}

// serializationFailure runs two SERIALIZABLE transactions that each read
// what the other writes, and returns the error of the one that loses.
func serializationFailure(t *testing.T, db *pgxpool.Pool) error {
	t.Helper()
	ctx := context.Background()
	var txs [2]pgx.Tx
	for i := range txs {
		tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // one of them fails
		var sum int
		if err := tx.QueryRow(ctx, `SELECT sum(n) FROM t`).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		txs[i] = tx
	}
	var errs [2]error
	var wg sync.WaitGroup
	for i, tx := range txs {
		wg.Go(func() {
			if _, err := tx.Exec(ctx, `UPDATE t SET n = n + 1 WHERE id = $1`, i+1); err != nil {
				errs[i] = err
				return
			}
			errs[i] = tx.Commit(ctx)
		})
	}
	wg.Wait()
	return errors.Join(errs[0], errs[1])
}

func TestNATSErrors(t *testing.T) {
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	_, err = nc.Request("nobody.listens", nil, time.Second)
	classify(t, "request without responders", err, true)

	_, err = js.Publish(ctx, "no.stream.here", []byte("x"))
	classify(t, "publish to a subject no stream holds", err, true)

	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	sub, err := nc.SubscribeSync("quiet")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sub.NextMsgWithContext(cctx)
	classify(t, "wait past its deadline", err, true)

	_, _, err = events.Parse([]byte("not json"))
	classify(t, "undecodable payload", err, false)

	nc.Close()
	_, err = js.Publish(ctx, "no.stream.here", []byte("x"))
	classify(t, "publish on a closed connection", err, true)
}

func TestEtcdUnavailable(t *testing.T) {
	srv := testenv.Etcd(t)
	cli := testenv.EtcdClient(t, srv)
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := cli.Get(ctx, "k")
	classify(t, "get from a stopped etcd", err, true)
}
