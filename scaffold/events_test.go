package scaffold

import (
	"slices"
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/events"
)

// TestKnownEventsMatchKit keeps the table in step with kit/events: every
// subject is listed once, with the payload events.New accepts for it.
func TestKnownEventsMatchKit(t *testing.T) {
	var listed []string
	for _, k := range known {
		if slices.Contains(listed, k.subject) {
			t.Errorf("%s is listed twice", k.subject)
		}
		listed = append(listed, k.subject)
		if _, err := events.New(k.subject, k.payload); err != nil {
			t.Errorf("%s: %v", k.name, err)
		}
	}
	for _, s := range events.Subjects() {
		if !slices.Contains(listed, s) {
			t.Errorf("subject %s of kit/events is missing from the scaffold's table", s)
		}
	}
}

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
			if err == nil && !slices.ContainsFunc(events.StreamSubjects[stream], func(p string) bool { return subjectMatches(p, got.Subject) }) {
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

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"orders.evt.>", "orders.evt.confirmed", true},
		{"orders.evt.>", "orders.evt", false},
		{"orders.*.confirmed", "orders.evt.confirmed", true},
		{"orders.evt.confirmed", "orders.evt.confirmed", true},
		{"orders.evt.confirmed", "orders.evt.cancelled", false},
		{"orders.evt", "orders.evt.confirmed", false},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.pattern, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}
