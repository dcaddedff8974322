package scaffold

import (
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/events"
)

func TestLookupEvent(t *testing.T) {
	tests := []struct {
		in      string
		want    Event // Stream is checked separately: kit owns the stream layout
		wantErr bool
	}{
		{"OrderConfirmed", Event{Name: "OrderConfirmed", Subject: events.OrderConfirmed, Payload: "OrderConfirmedV1"}, false},
		{"orders.evt.confirmed", Event{Name: "OrderConfirmed", Subject: events.OrderConfirmed, Payload: "OrderConfirmedV1"}, false},
		{"PaymentsCharge", Event{Name: "PaymentsCharge", Subject: events.PaymentsCharge, Payload: "ChargePayment"}, false},
		{"OrderShipped", Event{}, true},
		{"orderconfirmed", Event{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := LookupEvent(tt.in)
			stream := got.Stream
			got.Stream = ""
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("LookupEvent(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if err == nil && (stream == "" || stream != events.StreamOf(got.Subject)) {
				t.Fatalf("stream %q does not store %s", stream, got.Subject)
			}
		})
	}
}

// TestStreamExprs reads this repository's kit/events: every stream has a
// constant, so generated code names it.
func TestStreamExprs(t *testing.T) {
	exprs, err := streamExprs("..")
	if err != nil {
		t.Fatal(err)
	}
	for stream := range events.StreamSubjects {
		if !strings.HasPrefix(exprs[stream], "events.Stream") {
			t.Errorf("stream %s: expression %q, want its kit/events constant", stream, exprs[stream])
		}
	}
	exprs, err = streamExprs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for stream := range events.StreamSubjects {
		if exprs[stream] != `"`+stream+`"` {
			t.Errorf("without kit/events, stream %s: expression %q, want it quoted", stream, exprs[stream])
		}
	}
}
