package outbox_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/bus/bustest"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/kit/outbox"
)

var (
	natsURL string
	pg      *pgserver.Server
	pgCfg   pgserver.Config
	skipWhy string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outbox-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The postgres account must traverse the directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "nats"), SyncAlways: true, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats not ready")
		return 1
	}
	natsURL = srv.ClientURL()

	if _, err := pgserver.FindBin(); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		skipWhy = err.Error()
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pgCfg = pgserver.Config{DataDir: filepath.Join(dir, "pg")}
	pg, err = pgserver.Start(ctx, pgCfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A test that restarts the server keeps its port, so DSNs stay valid,
	// and the server stopped at the end is the one running by then.
	pgCfg.Port = pg.Port()
	defer func() { _ = pg.Stop(context.Background()) }()
	return m.Run()
}

// newDB creates a fresh database holding the outbox and inbox tables.
func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	if pg == nil {
		t.Skip(skipWhy)
	}
	ctx := context.Background()
	name := fmt.Sprintf("ob%d", time.Now().UnixNano())
	dsn, err := pg.EnsureDatabase(ctx, name, name, "pw")
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := db.Exec(ctx, outbox.Schema+inbox.Schema); err != nil {
		t.Fatal(err)
	}
	return db
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func addOrders(t *testing.T, db *pgxpool.Pool, n int) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), db, func(tx pgx.Tx) error {
		for i := range n {
			if _, err := outbox.Add(context.Background(), tx, events.InventoryReserve, events.ReserveStock{OrderID: fmt.Sprint("o", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	outbox.Wake()
}

func unsent(t *testing.T, db *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRelayPublishesCommittedRowsOnly(t *testing.T) {
	db, b := newDB(t), bustest.New(t, natsURL)
	ctx := context.Background()
	// A rolled-back transaction leaves nothing to publish.
	_ = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := outbox.Add(ctx, tx, events.InventoryReserve, events.ReserveStock{OrderID: "rolled-back"}); err != nil {
			t.Fatal(err)
		}
		return fmt.Errorf("abort")
	})
	addOrders(t, db, 300)

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r := &outbox.Relay{DB: db, Bus: b, Log: quiet(), Batch: 100, Poll: time.Hour}
	go func() { defer close(done); _ = r.Run(rctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for unsent(t, db) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := unsent(t, db); n != 0 {
		t.Fatalf("%d rows unsent", n)
	}
	if n := bustest.StreamMsgs(t, b, events.StreamInventoryCommands); n != 300 {
		t.Fatalf("stream holds %d, want 300", n)
	}
	// A row committed later (addOrders calls Wake) goes out before the next poll.
	addOrders(t, db, 1)
	deadline = time.Now().Add(5 * time.Second)
	for bustest.StreamMsgs(t, b, events.StreamInventoryCommands) != 301 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := bustest.StreamMsgs(t, b, events.StreamInventoryCommands); n != 301 {
		t.Fatalf("stream holds %d, want 301", n)
	}
}

func TestStoppingRelayPublishesWhatWasCommitted(t *testing.T) {
	db, b := newDB(t), bustest.New(t, natsURL)
	addOrders(t, db, 250)
	// Stopped before it ran a single round: it still drains on its way out.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &outbox.Relay{DB: db, Bus: b, Log: quiet(), Batch: 100, Poll: time.Hour}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := unsent(t, db); n != 0 {
		t.Fatalf("%d rows unsent after stop", n)
	}
	if n := bustest.StreamMsgs(t, b, events.StreamInventoryCommands); n != 250 {
		t.Fatalf("stream holds %d, want 250", n)
	}
}

// crashingPublisher stands in for the process dying between publish and mark.
type crashingPublisher struct {
	outbox.Publisher
	cancel context.CancelFunc
}

func (c crashingPublisher) PublishBatch(ctx context.Context, msgs []*nats.Msg) []error {
	errs := c.Publisher.PublishBatch(ctx, msgs)
	c.cancel() // the mark that follows fails: the rows stay unsent
	return errs
}

func TestDuplicateAfterCrashBetweenPublishAndMarkIsAbsorbed(t *testing.T) {
	db, b := newDB(t), bustest.New(t, natsURL)
	ctx := context.Background()
	addOrders(t, db, 5)

	cctx, cancel := context.WithCancel(ctx)
	crashing := &outbox.Relay{DB: db, Bus: crashingPublisher{Publisher: b, cancel: cancel}, Log: quiet()}
	if n, err := crashing.Flush(cctx); err == nil {
		t.Fatalf("mark should have failed, flushed %d", n)
	}
	if n := unsent(t, db); n != 5 {
		t.Fatalf("%d rows unsent after crash, want 5", n)
	}
	if n := bustest.StreamMsgs(t, b, events.StreamInventoryCommands); n != 5 {
		t.Fatalf("stream holds %d after crash, want 5", n)
	}
	// The next relay republishes the same ids: the stream dedups them.
	r := &outbox.Relay{DB: db, Bus: b, Log: quiet()}
	if n, err := r.Flush(ctx); err != nil || n != 5 {
		t.Fatalf("flush = %d, %v", n, err)
	}
	if n := bustest.StreamMsgs(t, b, events.StreamInventoryCommands); n != 5 {
		t.Fatalf("stream holds %d after republish, want 5", n)
	}
	if n := unsent(t, db); n != 0 {
		t.Fatalf("%d rows unsent", n)
	}
}

func TestInboxAbsorbsRepublishedCopies(t *testing.T) {
	db, b := newDB(t), bustest.New(t, natsURL)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE TABLE effects (order_id text)`); err != nil {
		t.Fatal(err)
	}
	addOrders(t, db, 20)
	r := &outbox.Relay{DB: db, Bus: b, Log: quiet()}
	if _, err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Republish every message under a new Nats-Msg-Id: the stream cannot
	// dedup these, only the inbox can.
	s, err := b.JetStream().Stream(ctx, events.StreamInventoryCommands)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 20; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			info, _ := s.Info(ctx)
			t.Fatalf("seq %d: %v (state %+v)", seq, err, info.State)
		}
		out := nats.NewMsg(m.Subject)
		out.Data = m.Data
		out.Header.Set("Nats-Msg-Id", fmt.Sprint("copy-", seq))
		if _, err := b.JetStream().PublishMsg(ctx, out); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	calls := 0
	h := inbox.Handler(db, "test", func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		mu.Lock()
		calls++
		mu.Unlock()
		_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ($1)`, m.Payload.(*events.ReserveStock).OrderID)
		return err
	})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(cctx, bus.ConsumerConfig{Stream: events.StreamInventoryCommands, Durable: "inbox-test", Subjects: []string{"inventory.cmd.>"}}, h)
	}()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM inbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		cons, err := b.JetStream().Consumer(ctx, events.StreamInventoryCommands, "inbox-test")
		if err == nil {
			if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 && n == 20 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var effects, distinct int
	if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT order_id) FROM effects`).Scan(&effects, &distinct); err != nil {
		t.Fatal(err)
	}
	if effects != 20 || distinct != 20 {
		t.Fatalf("effects = %d (%d distinct), want 20 once each", effects, distinct)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 20 {
		t.Fatalf("handler ran %d times, want 20", calls)
	}
}
