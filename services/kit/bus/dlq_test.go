package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/bus/bustest"
	"github.com/msctl/msctl/services/kit/events"
)

// TestParkedMessagesAreListedReplayedOnceAndDropped parks two messages with
// a handler that fails, lists them, fixes the handler, replays one (applied
// exactly once, with its trace) and drops the other.
func TestParkedMessagesAreListedReplayedOnceAndDropped(t *testing.T) {
	b := bustest.New(t, natsURL)
	ctx := context.Background()
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	tctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
	charge := publish(t, b, tctx, events.PaymentsCharge, events.ChargePayment{OrderID: "o1"})
	refund := publish(t, b, ctx, events.PaymentsRefund, events.RefundPayment{OrderID: "o2"})

	var fixed atomic.Bool
	var mu sync.Mutex
	applied := map[string]int{} // envelope id → times the handler applied it
	var gotTrace trace.TraceID
	consume(t, b, bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "fixme", Subjects: []string{"payments.cmd.>"}, MaxAttempts: 2},
		func(ctx context.Context, m bus.Message) error {
			if !fixed.Load() {
				return fmt.Errorf("db down")
			}
			mu.Lock()
			defer mu.Unlock()
			applied[m.Envelope.ID]++
			gotTrace = trace.SpanContextFromContext(ctx).TraceID()
			return nil
		})
	testenv.Until(t, 10*time.Second, "two parked messages", func() bool { return bustest.StreamMsgs(t, b, events.StreamDLQ) == 2 })

	all, err := b.ParkedMessages(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("listed %d parked messages, want 2: %+v", len(all), all)
	}
	// The two were parked concurrently, in either order.
	if all[0].Subject != events.PaymentsCharge {
		all[0], all[1] = all[1], all[0]
	}
	for i, want := range []string{events.PaymentsCharge, events.PaymentsRefund} {
		p := all[i]
		if p.Subject != want || p.Consumer != "fixme" || p.Stream != events.StreamPaymentsCommands || p.StreamSeq != uint64(i+1) ||
			p.Deliveries != 2 || p.Attempts != 2 || !strings.Contains(p.Reason, "db down") || p.ParkedAt.IsZero() || p.Data != nil {
			t.Errorf("parked[%d] = %+v, want %s by fixme after 2 deliveries, headers only", i, p, want)
		}
	}
	for _, tt := range []struct {
		subject string
		want    int
	}{{events.PaymentsRefund, 1}, {"payments.cmd.>", 2}, {events.InventoryReserve, 0}} {
		got, err := b.ParkedMessages(ctx, tt.subject)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tt.want {
			t.Errorf("subject %s: listed %d, want %d", tt.subject, len(got), tt.want)
		}
	}
	one, err := b.ParkedMessage(ctx, all[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(one.Data), charge.ID) {
		t.Errorf("payload %s lacks envelope id %s", one.Data, charge.ID)
	}

	fixed.Store(true)
	if err := b.ReplayParked(ctx, all[0].Seq); err != nil {
		t.Fatal(err)
	}
	testenv.Until(t, 10*time.Second, "replayed message applied", func() bool { mu.Lock(); defer mu.Unlock(); return applied[charge.ID] == 1 })
	time.Sleep(300 * time.Millisecond) // a second delivery would arrive by now
	mu.Lock()
	if applied[charge.ID] != 1 || applied[refund.ID] != 0 || gotTrace != traceID {
		t.Errorf("applied = %v, trace %s; want the charge once, in trace %s", applied, gotTrace, traceID)
	}
	mu.Unlock()
	if n, err := b.DLQDepth(ctx); err != nil || n != 1 {
		t.Errorf("DLQ depth after replay = %d, %v; want 1", n, err)
	}
	if err := b.ReplayParked(ctx, all[0].Seq); !errors.Is(err, bus.ErrNotParked) {
		t.Errorf("second replay: err = %v, want ErrNotParked", err)
	}

	if err := b.DropParked(ctx, all[1].Seq); err != nil {
		t.Fatal(err)
	}
	if n, err := b.DLQDepth(ctx); err != nil || n != 0 {
		t.Errorf("DLQ depth after drop = %d, %v; want 0", n, err)
	}
	if err := b.DropParked(ctx, all[1].Seq); !errors.Is(err, bus.ErrNotParked) {
		t.Errorf("second drop: err = %v, want ErrNotParked", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if applied[refund.ID] != 0 {
		t.Errorf("dropped message applied %d times", applied[refund.ID])
	}
}

// TestReplayRefusesWhenTheConsumerIsGone: nobody would receive the replay
// who failed the message, so it stays parked.
func TestReplayRefusesWhenTheConsumerIsGone(t *testing.T) {
	b := bustest.New(t, natsURL)
	ctx := context.Background()
	publish(t, b, ctx, events.InventoryReserve, events.ReserveStock{OrderID: "o9"})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(cctx, bus.ConsumerConfig{Stream: events.StreamInventoryCommands, Durable: "gone", Subjects: []string{"inventory.cmd.>"}},
			func(context.Context, bus.Message) error { return bus.Permanent(errors.New("bad")) })
	}()
	testenv.Until(t, 10*time.Second, "parked message", func() bool { return bustest.StreamMsgs(t, b, events.StreamDLQ) == 1 })
	cancel()
	<-done
	if err := b.JetStream().DeleteConsumer(ctx, events.StreamInventoryCommands, "gone"); err != nil {
		t.Fatal(err)
	}
	err := b.ReplayParked(ctx, 1)
	if !errors.Is(err, bus.ErrConsumerGone) || !strings.Contains(err.Error(), "gone") {
		t.Errorf("replay: err = %v, want ErrConsumerGone naming the consumer", err)
	}
	if n := bustest.StreamMsgs(t, b, events.StreamDLQ); n != 1 {
		t.Errorf("DLQ holds %d after a refused replay, want 1", n)
	}
}
