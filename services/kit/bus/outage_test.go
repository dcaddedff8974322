package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/bus/bustest"
	"github.com/msctl/msctl/services/kit/events"
)

// stoppablePostgres is a Postgres server of one test, which the test may
// stop and start again on the same port (the shared testenv server is not
// to be stopped under other tests).
type stoppablePostgres struct {
	t    *testing.T
	cfg  pgserver.Config
	srv  *pgserver.Server
	port int
}

func newStoppablePostgres(t *testing.T) *stoppablePostgres {
	t.Helper()
	if _, err := pgserver.FindBin(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "bus-pg-")
	if err != nil {
		t.Fatal(err)
	}
	// The postgres account must traverse the directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	p := &stoppablePostgres{t: t, cfg: pgserver.Config{DataDir: filepath.Join(dir, "data")}}
	p.start()
	p.cfg.Port = p.srv.Port()
	t.Cleanup(func() { p.stop(); os.RemoveAll(dir) })
	return p
}

func (p *stoppablePostgres) start() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, p.cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.srv = srv
}

func (p *stoppablePostgres) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.srv.Stop(ctx); err != nil {
		p.t.Error(err)
	}
}

func parked(t *testing.T, b *bus.Bus) uint64 { return bustest.StreamMsgs(t, b, events.StreamDLQ) }

// The database of a handler goes away for longer than the consumer used to
// retry (5 attempts within ~1.5s): its messages wait, the instance reports
// itself unhealthy, and everything is applied once the database is back.
func TestDatabaseOutageIsWaitedOutNotParked(t *testing.T) {
	pg := newStoppablePostgres(t)
	ctx := context.Background()
	db, err := pgxpool.New(ctx, pg.srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, `CREATE TABLE applied (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	applied := func() int {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&n); err != nil {
			return -1
		}
		return n
	}

	b := bustest.New(t, natsURL)
	cfg := bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "outage", Subjects: []string{"payments.cmd.>"}, MaxAttempts: 2, Concurrency: 4}
	var calls atomic.Int32
	consume(t, b, cfg, func(ctx context.Context, m bus.Message) error {
		calls.Add(1)
		_, err := db.Exec(ctx, `INSERT INTO applied VALUES ($1) ON CONFLICT DO NOTHING`, m.Envelope.ID)
		return err
	})
	publish(t, b, ctx, events.PaymentsCharge, events.ChargePayment{OrderID: "before"})
	testenv.Until(t, 10*time.Second, "first message applied", func() bool { return applied() == 1 })

	down := time.Now()
	pg.stop()
	for range 5 {
		publish(t, b, ctx, events.PaymentsCharge, events.ChargePayment{OrderID: "during"})
	}
	testenv.Until(t, 10*time.Second, "consumer reported unhealthy", func() bool { return b.Healthy(ctx) != nil })
	time.Sleep(time.Until(down.Add(6 * time.Second)))
	if n := parked(t, b); n != 0 {
		t.Fatalf("%d messages parked during the outage", n)
	}
	pg.start()

	testenv.Until(t, 30*time.Second, "every message applied after the outage", func() bool { return applied() == 6 })
	testenv.Until(t, 10*time.Second, "consumer healthy again", func() bool { return b.Healthy(ctx) == nil })
	if n := parked(t, b); n != 0 {
		t.Fatalf("%d messages parked", n)
	}
	// The handler did fail more often than MaxAttempts allows for non-transient errors.
	if c := calls.Load(); c <= int32(6+cfg.MaxAttempts) {
		t.Errorf("handler ran %d times; the outage was not exercised", c)
	}
}

// blipping returns a handler whose first n runs fail transiently (a real
// "no responders" from NATS) and whose later runs return then, and the
// count of its runs.
func blipping(t *testing.T, n int32, then error) (bus.Handler, *atomic.Int32) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	calls := new(atomic.Int32)
	return func(context.Context, bus.Message) error {
		if calls.Add(1) <= n {
			_, err := nc.Request("nobody.listens", nil, time.Second)
			return err
		}
		return then
	}, calls
}

// More transient failures (a real "no responders" from NATS) than
// MaxAttempts: none of them is an attempt.
func TestTransientFailuresUseNoAttempts(t *testing.T) {
	b := bustest.New(t, natsURL)
	handler, calls := blipping(t, 4, nil)
	consume(t, b, bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "blips", Subjects: []string{"payments.cmd.>"}, MaxAttempts: 1}, handler)
	publish(t, b, context.Background(), events.PaymentsCharge, events.ChargePayment{OrderID: "o"})
	testenv.Until(t, 15*time.Second, "handled after the blips", func() bool { return calls.Load() == 5 })
	time.Sleep(300 * time.Millisecond)
	if n := parked(t, b); n != 0 || calls.Load() != 5 {
		t.Fatalf("parked %d, handler ran %d times, want 0 and 5", n, calls.Load())
	}
}

// Messages waiting in the consumer's buffer longer than AckWait are
// redelivered by the server without their handler having run: that is no
// attempt, even with MaxAttempts 1.
func TestBufferedRedeliveryIsNoAttempt(t *testing.T) {
	b := bustest.New(t, natsURL)
	var mu sync.Mutex
	handled := map[string]int{}
	consume(t, b, bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "buffered", Subjects: []string{"payments.cmd.>"},
		MaxAttempts: 1, AckWait: time.Second, Concurrency: 1},
		func(_ context.Context, m bus.Message) error {
			mu.Lock()
			first := len(handled) == 0
			handled[m.Envelope.ID]++
			mu.Unlock()
			if first {
				time.Sleep(2500 * time.Millisecond) // the others wait in the buffer past AckWait
			}
			return nil
		})
	for range 4 {
		publish(t, b, context.Background(), events.PaymentsCharge, events.ChargePayment{OrderID: "o"})
	}
	testenv.Until(t, 15*time.Second, "every message handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(handled) == 4 })
	time.Sleep(2 * time.Second) // redelivered copies settle too
	if n := parked(t, b); n != 0 {
		t.Fatalf("%d buffered messages parked without their handler failing", n)
	}
}

// A handler that hangs is cut at HandlerTimeout; each cut is an attempt.
func TestHungHandlerIsCutAndCounted(t *testing.T) {
	b := bustest.New(t, natsURL)
	var calls atomic.Int32
	consume(t, b, bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "hung", Subjects: []string{"payments.cmd.>"},
		MaxAttempts: 2, HandlerTimeout: 300 * time.Millisecond},
		func(ctx context.Context, _ bus.Message) error {
			calls.Add(1)
			<-ctx.Done() // hangs until the consumer's deadline ends it
			return ctx.Err()
		})
	publish(t, b, context.Background(), events.PaymentsCharge, events.ChargePayment{OrderID: "o"})
	testenv.Until(t, 10*time.Second, "parked", func() bool { return parked(t, b) == 1 })
	if r := bustest.StreamMsg(t, b, events.StreamDLQ, 1).Header.Get(bus.HeaderDLQReason); !strings.Contains(r, "HandlerTimeout") {
		t.Errorf("reason %q does not name the handler deadline", r)
	}
	if c := calls.Load(); c != 2 {
		t.Errorf("handler ran %d times, want MaxAttempts (2)", c)
	}
}

func TestFullHistory(t *testing.T) {
	b := bustest.New(t, natsURL)
	ctx := context.Background()
	for range 5 {
		publish(t, b, ctx, events.OrderCreated, events.OrderCreatedV1{OrderID: "o"})
	}
	if err := b.FullHistory(ctx, events.StreamOrderEvents); err != nil {
		t.Fatalf("a stream holding all its messages: %v", err)
	}
	// Limits that remove the oldest messages.
	bustest.LimitMsgs(t, b, events.StreamOrderEvents, 3)
	err := b.FullHistory(ctx, events.StreamOrderEvents)
	var lost *bus.HistoryLostError
	if !errors.As(err, &lost) || lost.FirstSeq != 3 {
		t.Fatalf("got %v, want history lost from sequence 3", err)
	}
	if want := "starts at sequence 3: the first 2 messages were removed"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// A message that waited through transient failures and then failed for
// good is parked with its handler's failed runs as attempts, apart from
// the deliveries the outage cost.
func TestParkedAttemptsLeaveOutTransientDeliveries(t *testing.T) {
	b := bustest.New(t, natsURL)
	handler, _ := blipping(t, 3, errors.New("a bug"))
	consume(t, b, bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "blips-then-bug", Subjects: []string{"payments.cmd.>"}, MaxAttempts: 2}, handler)
	publish(t, b, context.Background(), events.PaymentsCharge, events.ChargePayment{OrderID: "o"})
	testenv.Until(t, 20*time.Second, "parked", func() bool { return parked(t, b) == 1 })
	all, err := b.ParkedMessages(context.Background(), "")
	if err != nil || len(all) != 1 {
		t.Fatalf("parked messages %+v, %v", all, err)
	}
	if p := all[0]; p.Attempts != 2 || p.Deliveries != 5 {
		t.Errorf("parked after %d attempts in %d deliveries, want 2 in 5", p.Attempts, p.Deliveries)
	}
}
