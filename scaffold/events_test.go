package scaffold

import (
	"slices"
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
		want    Event
		wantErr bool
	}{
		{"OrderConfirmed", Event{Name: "OrderConfirmed", Subject: events.OrderConfirmed, Payload: "OrderConfirmedV1", Stream: events.StreamEvents}, false},
		{"orders.evt.confirmed", Event{Name: "OrderConfirmed", Subject: events.OrderConfirmed, Payload: "OrderConfirmedV1", Stream: events.StreamEvents}, false},
		{"PaymentsCharge", Event{Name: "PaymentsCharge", Subject: events.PaymentsCharge, Payload: "ChargePayment", Stream: events.StreamCommands}, false},
		{"OrderShipped", Event{}, true},
		{"orderconfirmed", Event{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := LookupEvent(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("LookupEvent(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
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
