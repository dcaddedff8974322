package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/bus/bustest"
	"github.com/msctl/msctl/services/kit/events"
)

var natsURL string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bus-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, SyncAlways: true, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats not ready")
		os.Exit(1)
	}
	natsURL = srv.ClientURL()
	code := m.Run()
	srv.Shutdown()
	os.RemoveAll(dir)
	os.Exit(code)
}

func publish(t *testing.T, b *bus.Bus, ctx context.Context, subject string, data any) events.Envelope {
	t.Helper()
	env, err := events.New(subject, data)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(env)
	if err := b.Publish(ctx, env, raw); err != nil {
		t.Fatal(err)
	}
	return env
}

func consume(t *testing.T, b *bus.Bus, cfg bus.ConsumerConfig, h bus.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Consume(ctx, cfg, h) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestPublishConsumeCarriesTraceAndDedups(t *testing.T) {
	b := bustest.New(t, natsURL)
	traceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	spanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))

	env := publish(t, b, ctx, events.InventoryReserve, events.ReserveStock{OrderID: "o1"})
	// Same Nats-Msg-Id again: the stream keeps one copy.
	raw, _ := json.Marshal(env)
	if err := b.Publish(ctx, env, raw); err != nil {
		t.Fatal(err)
	}
	if n := bustest.StreamMsgs(t, b, events.StreamInventoryCommands); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}

	var mu sync.Mutex
	var got []bus.Message
	var gotTrace trace.TraceID
	consume(t, b, bus.ConsumerConfig{Stream: events.StreamInventoryCommands, Durable: "t1", Subjects: []string{"inventory.cmd.>"}},
		func(ctx context.Context, m bus.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m)
			gotTrace = trace.SpanContextFromContext(ctx).TraceID()
			return nil
		})
	testenv.Until(t, 10*time.Second, "delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if p, ok := got[0].Payload.(*events.ReserveStock); !ok || p.OrderID != "o1" {
		t.Fatalf("payload = %#v", got[0].Payload)
	}
	if got[0].Envelope.ID != env.ID {
		t.Fatalf("id = %s, want %s", got[0].Envelope.ID, env.ID)
	}
	if gotTrace != traceID {
		t.Fatalf("handler trace = %s, want %s", gotTrace, traceID)
	}
}

func TestPoisonMessagesAreParked(t *testing.T) {
	tests := []struct {
		name       string
		send       func(t *testing.T, b *bus.Bus)
		handler    func(calls *atomic.Int32) bus.Handler
		wantCalls  int32
		wantReason string
	}{
		{
			name: "retried then parked",
			send: func(t *testing.T, b *bus.Bus) {
				publish(t, b, context.Background(), events.PaymentsCharge, events.ChargePayment{OrderID: "o2"})
			},
			handler: func(calls *atomic.Int32) bus.Handler {
				return func(context.Context, bus.Message) error { calls.Add(1); return fmt.Errorf("db down") }
			},
			wantCalls:  3,
			wantReason: "db down",
		},
		{
			name: "permanent error parked at once",
			send: func(t *testing.T, b *bus.Bus) {
				publish(t, b, context.Background(), events.PaymentsCharge, events.ChargePayment{OrderID: "o3"})
			},
			handler: func(calls *atomic.Int32) bus.Handler {
				return func(context.Context, bus.Message) error { calls.Add(1); return bus.Permanent(fmt.Errorf("bad order")) }
			},
			wantCalls:  1,
			wantReason: "bad order",
		},
		{
			name: "undecodable payload parked without calling the handler",
			send: func(t *testing.T, b *bus.Bus) {
				m := nats.NewMsg(events.PaymentsCharge)
				m.Data = []byte("not json")
				m.Header.Set(jetstream.MsgIDHeader, "garbage-1")
				if _, err := b.JetStream().PublishMsg(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			},
			handler: func(calls *atomic.Int32) bus.Handler {
				return func(context.Context, bus.Message) error { calls.Add(1); return nil }
			},
			wantCalls:  0,
			wantReason: "decode envelope",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bustest.New(t, natsURL)
			tt.send(t, b)
			var calls atomic.Int32
			consume(t, b, bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "poison", Subjects: []string{"payments.cmd.>"}, MaxAttempts: 3},
				tt.handler(&calls))
			testenv.Until(t, 10*time.Second, "parked message", func() bool { return bustest.StreamMsgs(t, b, events.StreamDLQ) == 1 })

			parked := bustest.StreamMsg(t, b, events.StreamDLQ, 1)
			if parked.Subject != "dlq."+events.PaymentsCharge {
				t.Errorf("parked on %s", parked.Subject)
			}
			if r := parked.Header.Get(bus.HeaderDLQReason); !strings.Contains(r, tt.wantReason) {
				t.Errorf("reason %q, want %q", r, tt.wantReason)
			}
			if parked.Header.Get(bus.HeaderDLQConsumer) != "poison" || parked.Header.Get(bus.HeaderDLQSequence) != "1" {
				t.Errorf("headers = %v", parked.Header)
			}
			// Acked after parking: nothing is redelivered any more.
			time.Sleep(300 * time.Millisecond)
			if c := calls.Load(); c != tt.wantCalls {
				t.Errorf("handler called %d times, want %d", c, tt.wantCalls)
			}
			cons, err := b.JetStream().Consumer(context.Background(), events.StreamPaymentsCommands, "poison")
			if err != nil {
				t.Fatal(err)
			}
			info, err := cons.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.NumAckPending != 0 || info.NumPending != 0 {
				t.Errorf("consumer still has pending=%d ack_pending=%d", info.NumPending, info.NumAckPending)
			}
		})
	}
}

func TestReplayReadsAFilteredStreamOnce(t *testing.T) {
	b := bustest.New(t, natsURL)
	ctx := context.Background()
	for i := range 300 {
		publish(t, b, ctx, events.OrderCreated, events.OrderCreatedV1{OrderID: fmt.Sprint("o", i)})
		if i%100 == 0 {
			publish(t, b, ctx, events.InventoryReserved, events.StockReserved{OrderID: "other"})
		}
	}
	var ids []string
	n, err := b.Replay(ctx, events.StreamOrderEvents, []string{"orders.evt.>"}, func(m bus.Message) error {
		ids = append(ids, m.Payload.(*events.OrderCreatedV1).OrderID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 300 || len(ids) != 300 || ids[0] != "o0" || ids[299] != "o299" {
		t.Fatalf("replayed %d (%d ids, first %v)", n, len(ids), ids[:1])
	}
	// An empty selection returns at once.
	n, err = b.Replay(ctx, events.StreamOrderEvents, []string{"orders.evt.confirmed"}, func(bus.Message) error { return nil })
	if err != nil || n != 0 {
		t.Fatalf("empty replay = %d, %v", n, err)
	}
}

func TestPublishBatchStoresEachMessageOnce(t *testing.T) {
	msg := func(subject string, i int) *nats.Msg {
		env, err := events.New(subject, payloadFor(subject, i))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(env)
		return bus.NewMsg(context.Background(), subject, fmt.Sprint("id-", i), raw, nil)
	}
	tests := []struct {
		name     string
		n        int // messages on one stream
		stored   int // of them already in the stream (a relay crashed before marking)
		wantMsgs uint64
	}{
		{"few, one by one", 5, 0, 5},
		{"many, as an atomic batch", 300, 0, 300},
		{"many with duplicates: the refused batch goes one by one", 300, 40, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bustest.New(t, natsURL)
			ctx := context.Background()
			var msgs []*nats.Msg
			for i := range tt.n {
				msgs = append(msgs, msg(events.InventoryRelease, i))
			}
			for i, err := range b.PublishBatch(ctx, msgs[:tt.stored]) {
				if err != nil {
					t.Fatalf("pre-store %d: %v", i, err)
				}
			}
			// A message of another stream rides along.
			msgs = append(msgs, msg(events.OrderCreated, tt.n))
			for i, err := range b.PublishBatch(ctx, msgs) {
				if err != nil {
					t.Errorf("message %d: %v", i, err)
				}
			}
			if got := bustest.StreamMsgs(t, b, events.StreamInventoryCommands); got != tt.wantMsgs {
				t.Errorf("stream holds %d messages, want %d", got, tt.wantMsgs)
			}
			if got := bustest.StreamMsgs(t, b, events.StreamOrderEvents); got != 1 {
				t.Errorf("order events hold %d messages, want 1", got)
			}
		})
	}
}

func payloadFor(subject string, i int) any {
	if subject == events.OrderCreated {
		return events.OrderCreatedV1{OrderID: fmt.Sprint("o", i)}
	}
	return events.ReleaseStock{OrderID: fmt.Sprint("o", i)}
}
