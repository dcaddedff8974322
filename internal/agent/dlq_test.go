package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/bus/bustest"
	"github.com/msctl/msctl/services/kit/events"
)

// TestDLQAPI parks a message with a real consumer on a real broker, then
// lists, shows, replays and drops through the agent's API, as the CLI does.
func TestDLQAPI(t *testing.T) {
	a, c := idleClient(t)
	var apiErr *APIError
	if _, err := c.DLQ(t.Context(), ""); !errors.As(err, &apiErr) || apiErr.Code != "not_up" {
		t.Fatalf("DLQ before the broker is attached: err = %v, want not_up", err)
	}

	srv := testenv.NATS(t)
	b := bustest.New(t, srv.URL())
	env, err := events.New(events.PaymentsCharge, events.ChargePayment{OrderID: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(env)
	if err := b.Publish(t.Context(), env, raw); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(cctx, bus.ConsumerConfig{Stream: events.StreamPaymentsCommands, Durable: "payments", Subjects: []string{"payments.cmd.>"}},
			func(context.Context, bus.Message) error { return bus.Permanent(errors.New("card number missing")) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Until(t, 10*time.Second, "parked message", func() bool { return bustest.StreamMsgs(t, b, events.StreamDLQ) == 1 })

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := a.attachBroker(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	testenv.Until(t, 5*time.Second, "DLQ depth in the snapshot", func() bool {
		s, err := c.Snapshot(t.Context())
		return err == nil && s.DLQDepth == 1
	})

	ms, err := c.DLQ(t.Context(), "payments.cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != 1 || ms[0].Subject != events.PaymentsCharge || ms[0].Consumer != "payments" ||
		ms[0].Attempts != 1 || !strings.Contains(ms[0].Reason, "card number missing") || ms[0].Payload != "" {
		t.Fatalf("listed %+v", ms)
	}
	if ms, err := c.DLQ(t.Context(), events.InventoryReserve); err != nil || len(ms) != 0 {
		t.Errorf("other subject: %+v, %v; want none", ms, err)
	}
	m, err := c.DLQMessage(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Payload, env.ID) || m.Headers[bus.HeaderDLQConsumer][0] != "payments" {
		t.Errorf("shown %+v", m)
	}
	if _, err := c.DLQMessage(t.Context(), 7); !errors.As(err, &apiErr) || apiErr.Status != 404 || !strings.Contains(err.Error(), "dlq ls") {
		t.Errorf("unknown id: err = %v, want a 404 pointing at dlq ls", err)
	}
	if _, err := c.DLQReplay(t.Context(), DLQSelection{IDs: []uint64{1}, Subject: "x"}); !errors.As(err, &apiErr) || apiErr.Code != "bad_selection" {
		t.Errorf("ids with a subject: err = %v, want bad_selection", err)
	}

	out, err := c.DLQDrop(t.Context(), DLQSelection{IDs: []uint64{7}})
	if err != nil || len(out.Done) != 0 || len(out.Failed) != 1 || out.Failed[0].ID != 7 {
		t.Errorf("drop of an unknown id = %+v, %v; want it failed", out, err)
	}
	out, err = c.DLQReplay(t.Context(), DLQSelection{All: true, Subject: events.PaymentsCharge})
	if err != nil || len(out.Done) != 1 || out.Done[0] != 1 || len(out.Failed) != 0 {
		t.Fatalf("replay --all = %+v, %v; want message 1 done", out, err)
	}
	// The handler still refuses, so the replayed message is parked again, under a new id.
	testenv.Until(t, 10*time.Second, "parked again", func() bool {
		ms, err := c.DLQ(t.Context(), "")
		return err == nil && len(ms) == 1 && ms[0].ID == 2
	})
	out, err = c.DLQDrop(t.Context(), DLQSelection{All: true})
	if err != nil || len(out.Done) != 1 || out.Done[0] != 2 {
		t.Fatalf("drop --all = %+v, %v", out, err)
	}
	testenv.Until(t, 5*time.Second, "DLQ depth 0 in the snapshot", func() bool {
		s, err := c.Snapshot(t.Context())
		return err == nil && s.DLQDepth == 0
	})
}
