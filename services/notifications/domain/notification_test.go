package domain

import (
	"testing"

	"github.com/msctl/msctl/services/kit/events"
)

func TestFromEvent(t *testing.T) {
	tests := []struct {
		name     string
		in       any
		wantOK   bool
		wantKind string
		wantMsg  string
	}{
		{"confirmed", &events.OrderConfirmedV1{OrderID: "o1", UserID: "u", TotalCents: 12345}, true, KindOrderConfirmed, "Your order o1 is confirmed: $123.45 charged."},
		{"cancelled", &events.OrderCancelledV1{OrderID: "o2", UserID: "u", Reason: "card declined"}, true, KindOrderCancelled, "Your order o2 was cancelled: card declined."},
		{"created", &events.OrderCreatedV1{OrderID: "o3"}, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := FromEvent(tt.in)
			if ok != tt.wantOK || n.Kind != tt.wantKind || n.Message != tt.wantMsg {
				t.Fatalf("got %+v, %v", n, ok)
			}
		})
	}
}
