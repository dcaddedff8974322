package outbox_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/infra/pgserver"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/bus/bustest"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/outbox"
)

// The broker goes away, then the database too; the broker comes back
// first. Rows committed meanwhile stay unsent, none is dropped or marked,
// and all go out once both are back, with one log line for the pause and
// one for the resumption however many rounds failed.
func TestRelayRidesOutBrokerAndDatabaseOutages(t *testing.T) {
	db := newDB(t)
	ns := testenv.NATS(t)
	b := bustest.Dial(t, ns.URL())
	ctx := context.Background()
	if err := b.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	r := &outbox.Relay{DB: db, Bus: b, Log: slog.New(slog.NewTextHandler(&logs, nil)), Poll: 50 * time.Millisecond}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(rctx) }()
	defer func() { cancel(); <-done }()

	ns.Shutdown()
	addOrders(t, db, 20)
	testenv.Until(t, 15*time.Second, "relay reported unhealthy", func() bool { return r.Healthy(ctx) != nil })
	if n := unsent(t, db); n != 20 {
		t.Fatalf("%d rows unsent while the broker is down, want 20", n)
	}

	stopCtx, stopCancel := context.WithTimeout(ctx, 30*time.Second)
	defer stopCancel()
	if err := pg.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := ns.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the relay now fails on the database
	startCtx, startCancel := context.WithTimeout(ctx, time.Minute)
	defer startCancel()
	var err error
	if pg, err = pgserver.Start(startCtx, pgCfg); err != nil {
		t.Fatal(err)
	}

	testenv.Until(t, 30*time.Second, "rows published after the outages", func() bool { return unsent(t, db) == 0 })
	if n := bustest.StreamMsgs(t, b, events.StreamInventoryCommands); n != 20 {
		t.Errorf("stream holds %d messages, want 20", n)
	}
	testenv.Until(t, 5*time.Second, "relay healthy again", func() bool { return r.Healthy(ctx) == nil })
	out := logs.String()
	if p, res := strings.Count(out, "outbox relay paused"), strings.Count(out, "outbox relay resumed"); p != 1 || res != 1 {
		t.Errorf("logged %d pauses and %d resumptions, want one each:\n%s", p, res, out)
	}
}
