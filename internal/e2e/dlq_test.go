package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/agent/agenttest"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/events"
)

// TestDLQThroughTheBinary parks a poison message with the real payments
// consumer and takes it through dlq ls, show, replay (it is poison still,
// so it is parked again under a new id) and drop, as a user would.
func TestDLQThroughTheBinary(t *testing.T) {
	ensureUp(t)
	// ps shows the broker's endpoint as its URL.
	ack := agenttest.PublishPoison(t, component(shop.PS(t), "nats").Endpoint)

	// parkedAfter is the message parked by payments from its stream's
	// sequence seq on: other tests may have parked messages of their own.
	parkedAfter := func(seq uint64) (state.DLQMessage, bool) {
		var ms []state.DLQMessage
		if err := json.Unmarshal([]byte(shop.Must(t, "dlq", "ls", "--json", "--subject", events.PaymentsCharge).Stdout), &ms); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Stream == ack.Stream && m.StreamSeq >= seq && m.Consumer == "payments" {
				return m, true
			}
		}
		return state.DLQMessage{}, false
	}
	var parked state.DLQMessage
	testenv.Until(t, 30*time.Second, "the poison message in dlq ls", func() (ok bool) { parked, ok = parkedAfter(ack.Sequence); return ok })
	if !strings.Contains(parked.Reason, "decode") || parked.Subject != events.PaymentsCharge {
		t.Errorf("parked = %+v, want a decode failure on %s", parked, events.PaymentsCharge)
	}
	id := strconv.FormatUint(parked.ID, 10)
	show := shop.Must(t, "dlq", "show", id)
	for _, want := range []string{"consumer  payments", "Dlq-Reason: ", "payload:\n\"not json\""} {
		if !strings.Contains(show.Stdout, want) {
			t.Errorf("dlq show lacks %q:\n%s", want, show.Stdout)
		}
	}
	testenv.Until(t, 5*time.Second, "the DLQ depth in the snapshot (polled once a second)", func() bool {
		s, err := client(t).Snapshot(t.Context())
		return err == nil && s.DLQDepth > 0
	})

	if r := shop.Must(t, "dlq", "replay", id); !strings.Contains(r.Stderr, "replayed 1 message: "+id) {
		t.Errorf("dlq replay said %q", r.Stderr)
	}
	var again state.DLQMessage
	testenv.Until(t, 30*time.Second, "the replayed poison parked again", func() (ok bool) { again, ok = parkedAfter(ack.Sequence + 1); return ok })
	if r := shop.Run(t, "dlq", "show", id); r.Code != 1 || !strings.Contains(r.Stderr, "no such parked message") {
		t.Errorf("dlq show of the replayed id: exit %d, %q", r.Code, r.Stderr)
	}

	shop.Must(t, "dlq", "drop", strconv.FormatUint(again.ID, 10))
	if _, ok := parkedAfter(ack.Sequence); ok {
		t.Error("dropped message still listed")
	}
	if r := shop.Run(t, "dlq", "replay", "--all", "--subject", "nothing.here"); r.Code != 0 || !strings.Contains(r.Stderr, "no parked messages on nothing.here") {
		t.Errorf("replay --all of an empty subject: exit %d, %q", r.Code, r.Stderr)
	}
}
