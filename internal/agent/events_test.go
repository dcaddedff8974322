package agent

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// The `>` subscription sees each JetStream delivery to a consumer as another copy of the message:
// with two consumers on a stream, a publish is counted once as an event, once as a delivery per
// consumer, and a nak'ed message's second delivery as a redelivery.
func TestEventsCountedOnceDeliveriesPerConsumer(t *testing.T) {
	srv := testenv.NATS(t)
	agentConn, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agentConn.Close)
	col := newCollector(100)
	if err := col.watchEvents(t.Context(), agentConn); err != nil {
		t.Fatal(err)
	}
	if err := agentConn.Flush(); err != nil { // the subscription is in place before anything is published
		t.Fatal(err)
	}

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHOP", Subjects: []string{"shop.>"}})
	if err != nil {
		t.Fatal(err)
	}
	consumers := map[string]jetstream.Consumer{}
	for _, name := range []string{"billing", "mailer"} {
		c, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		consumers[name] = c
	}
	const n = 5
	for i := range n {
		if _, err := js.Publish(ctx, "shop.placed", fmt.Appendf(nil, `{"i":%d}`, i), jetstream.WithMsgID(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	// mailer naks its first message once, so it comes again.
	first, err := consumers["mailer"].Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range first.Messages() {
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range consumers {
		got := 0
		for got < n {
			batch, err := c.Fetch(n-got, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for m := range batch.Messages() {
				if err := m.Ack(); err != nil {
					t.Fatal(err)
				}
				got++
			}
			if batch.Error() != nil {
				t.Fatalf("%s: fetch: %v", name, batch.Error())
			}
		}
	}

	want := []state.Delivery{
		{Stream: "SHOP", Consumer: "billing", Delivered: n},
		{Stream: "SHOP", Consumer: "mailer", Delivered: n, Redelivered: 1},
	}
	var s state.Snapshot
	testenv.Eventually(t, 5*time.Second, "deliveries counted", func() error {
		s = state.Snapshot{}
		col.snapshot(&s)
		if !slices.Equal(s.Deliveries, want) {
			return fmt.Errorf("deliveries %+v, want %+v", s.Deliveries, want)
		}
		return nil
	})
	if len(s.Events) != n {
		t.Fatalf("%d events, want each of the %d publishes once: %+v", len(s.Events), n, s.Events)
	}
	for i, e := range s.Events {
		if e.Subject != "shop.placed" || e.Stream != "SHOP" || e.MsgID != fmt.Sprint("m", i) {
			t.Errorf("event %d = %+v", i, e)
		}
	}
}
