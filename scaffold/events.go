package scaffold

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/msctl/msctl/services/kit/events"
)

// Event is a message a scaffolded service may consume or publish, as the
// templates need it.
type Event struct {
	// Name is the Go constant in services/kit/events, e.g. OrderConfirmed.
	Name string
	// Subject is its value, e.g. orders.evt.confirmed.
	Subject string
	// Payload is the payload type's name in kit/events, e.g. OrderConfirmedV1.
	Payload string
	// Stream is the stream storing the subject, e.g. EVENTS.
	Stream string
}

// known lists every message of kit/events by the name of its constant. Go
// cannot list constants by reflection, so a test checks this table covers
// events.Subjects() and pairs each subject with the payload events.New
// accepts for it.
var known = []struct {
	name    string
	subject string
	payload any
}{
	{"InventoryReserve", events.InventoryReserve, events.ReserveStock{}},
	{"InventoryRelease", events.InventoryRelease, events.ReleaseStock{}},
	{"PaymentsCharge", events.PaymentsCharge, events.ChargePayment{}},
	{"PaymentsRefund", events.PaymentsRefund, events.RefundPayment{}},
	{"InventoryReserved", events.InventoryReserved, events.StockReserved{}},
	{"InventoryRejected", events.InventoryRejected, events.StockRejected{}},
	{"InventoryReleased", events.InventoryReleased, events.StockReleased{}},
	{"PaymentsCharged", events.PaymentsCharged, events.PaymentCharged{}},
	{"PaymentsDeclined", events.PaymentsDeclined, events.PaymentDeclined{}},
	{"PaymentsRefunded", events.PaymentsRefunded, events.PaymentRefunded{}},
	{"OrderCreated", events.OrderCreated, events.OrderCreatedV1{}},
	{"OrderConfirmed", events.OrderConfirmed, events.OrderConfirmedV1{}},
	{"OrderCancelled", events.OrderCancelled, events.OrderCancelledV1{}},
}

// streamIdents names the kit/events constant of each stream, for generated
// consumer configurations.
var streamIdents = map[string]string{
	events.StreamCommands: "StreamCommands",
	events.StreamEvents:   "StreamEvents",
}

// EventNames lists the names --consumes and --publishes accept, sorted.
func EventNames() []string {
	names := make([]string, len(known))
	for i, k := range known {
		names[i] = k.name
	}
	sort.Strings(names)
	return names
}

// LookupEvent finds an event by its constant name (OrderConfirmed) or its
// subject (orders.evt.confirmed).
func LookupEvent(s string) (Event, error) {
	for _, k := range known {
		if k.name != s && k.subject != s {
			continue
		}
		stream, err := streamOf(k.subject)
		if err != nil {
			return Event{}, err
		}
		return Event{Name: k.name, Subject: k.subject, Payload: reflect.TypeOf(k.payload).Name(), Stream: stream}, nil
	}
	return Event{}, fmt.Errorf("unknown event %q", s)
}

// streamOf returns the stream whose subjects capture subject. A stream's
// subjects are NATS patterns: '*' is one token, a final '>' the rest.
func streamOf(subject string) (string, error) {
	for stream, patterns := range events.StreamSubjects {
		if _, ok := streamIdents[stream]; !ok {
			continue
		}
		for _, p := range patterns {
			if subjectMatches(p, subject) {
				return stream, nil
			}
		}
	}
	return "", fmt.Errorf("no stream stores subject %s", subject)
}

func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		if p != "*" && p != st[i] {
			return false
		}
	}
	return len(pt) == len(st)
}
