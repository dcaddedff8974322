// Package agenttest checks, for the tests of every runtime, what the agent
// of a running shop workspace does beyond what a runtime promises.
package agenttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/services/kit/events"
)

// ParkAndDrop sends a poison charge command to the broker of the shop
// workspace in dir, through the endpoint the agent shows for it, and checks
// that payments parks it, that the agent lists it in the DLQ and counts it
// in the snapshot, and that dropping it removes it. It proves the DLQ
// commands reach the broker on whichever runtime the workspace runs.
func ParkAndDrop(t *testing.T, dir string) {
	t.Helper()
	c, err := agent.Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var url string
	for _, comp := range snap.Components {
		if comp.Name == "nats" {
			url = comp.Endpoint
		}
	}
	ack := PublishPoison(t, url)

	var parked state.DLQMessage
	for parked.ID == 0 {
		ms, err := c.DLQ(ctx, events.PaymentsCharge)
		if err != nil {
			t.Fatalf("dlq ls: %v", err)
		}
		for _, pm := range ms {
			if pm.Stream == ack.Stream && pm.StreamSeq == ack.Sequence && pm.Consumer == "payments" {
				parked = pm
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the poison message (%s #%d) was not parked by payments within a minute", ack.Stream, ack.Sequence)
		case <-time.After(200 * time.Millisecond):
		}
	}
	for snap.DLQDepth == 0 {
		if snap, err = c.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the snapshot's DLQ depth stayed 0 with a message parked")
		case <-time.After(200 * time.Millisecond):
		}
	}
	out, err := c.DLQDrop(ctx, agent.DLQSelection{IDs: []uint64{parked.ID}})
	if err != nil || len(out.Done) != 1 || out.Done[0] != parked.ID {
		t.Fatalf("dlq drop %d: %+v, %v", parked.ID, out, err)
	}
	if _, err := c.DLQMessage(ctx, parked.ID); err == nil {
		t.Errorf("dlq show %d after the drop: still there", parked.ID)
	}
}

// PublishPoison publishes a charge command payments cannot decode to the
// broker at url, as a fresh message, and returns where the stream stored it.
func PublishPoison(t *testing.T, url string) *jetstream.PubAck {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to the broker at %q: %v", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(events.PaymentsCharge)
	m.Data = []byte("not json")
	m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("poison-%d", time.Now().UnixNano()))
	ack, err := js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}
