// Package events is the one place where the shop's asynchronous messages are
// defined: subjects, payload types, and the schema version of each.
//
// Every message travels in an Envelope. The envelope's ID is unique per
// message and doubles as the JetStream Nats-Msg-Id (stream dedup) and the
// inbox key (consumer dedup), so a redelivery or a republished copy of the
// same envelope is absorbed by both. Readers ignore fields they do not know
// (see Parse), so adding a field is not a breaking change; a payload change
// that breaks readers gets a new version number here and a decoder for the
// old one.
package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"
)

// Commands: sent by the orders saga, consumed by the owning service.
const (
	InventoryReserve = "inventory.cmd.reserve"
	InventoryRelease = "inventory.cmd.release"
	PaymentsCharge   = "payments.cmd.charge"
	PaymentsRefund   = "payments.cmd.refund"
)

// Replies: published by inventory and payments, consumed by the saga.
const (
	InventoryReserved = "inventory.evt.reserved"
	InventoryRejected = "inventory.evt.rejected"
	InventoryReleased = "inventory.evt.released"
	PaymentsCharged   = "payments.evt.charged"
	PaymentsDeclined  = "payments.evt.declined"
	PaymentsRefunded  = "payments.evt.refunded"
)

// Order events: published by orders, consumed by notifications and by the
// orders read model.
const (
	OrderCreated   = "orders.evt.created"
	OrderConfirmed = "orders.evt.confirmed"
	OrderCancelled = "orders.evt.cancelled"
)

// Streams: one per service and kind of message. With sync_interval always
// a stream stores one message per disk sync, so separate streams are what
// lets the saga's messages be stored in parallel. The subject sets must not
// overlap: JetStream refuses overlapping streams.
const (
	StreamInventoryCommands = "INVENTORY_CMD"
	StreamInventoryEvents   = "INVENTORY_EVT"
	StreamPaymentsCommands  = "PAYMENTS_CMD"
	StreamPaymentsEvents    = "PAYMENTS_EVT"
	StreamOrderEvents       = "ORDERS_EVT"
	StreamDLQ               = "DLQ"
)

// StreamSubjects maps each stream to the subjects it captures.
var StreamSubjects = map[string][]string{
	StreamInventoryCommands: {"inventory.cmd.>"},
	StreamInventoryEvents:   {"inventory.evt.>"},
	StreamPaymentsCommands:  {"payments.cmd.>"},
	StreamPaymentsEvents:    {"payments.evt.>"},
	StreamOrderEvents:       {"orders.evt.>"},
	StreamDLQ:               {DLQPrefix + ">"},
}

// DLQPrefix is prepended to a subject when a message is parked.
const DLQPrefix = "dlq."

// Item is one line of an order as the customer asked for it.
type Item struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// PricedItem is an order line with the unit price inventory reserved it at.
type PricedItem struct {
	ProductID      string `json:"product_id"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// ReserveStock asks inventory to reserve every item of an order, all or nothing.
type ReserveStock struct {
	OrderID string `json:"order_id"`
	Items   []Item `json:"items"`
}

// ReleaseStock undoes a reservation (compensation). Releasing an order that
// holds no reservation is a no-op that still replies StockReleased.
type ReleaseStock struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// StockReserved carries the unit prices, so orders computes totals from the
// prices the stock was actually reserved at.
type StockReserved struct {
	OrderID string       `json:"order_id"`
	Items   []PricedItem `json:"items"`
}

// StockRejected says nothing was reserved.
type StockRejected struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// StockReleased confirms a release.
type StockReleased struct {
	OrderID string `json:"order_id"`
}

// ChargePayment asks payments to charge a card once per order. The card
// number never travels in clear: Card is sealed (kit/vault, under the
// card-vault secret orders and payments share, bound to the order id).
type ChargePayment struct {
	OrderID     string `json:"order_id"`
	UserID      string `json:"user_id"`
	AmountCents int64  `json:"amount_cents"`
	Card        string `json:"card"`
}

// RefundPayment undoes a charge (compensation). Refunding an order that was
// never charged voids it, so a late charge command is declined.
type RefundPayment struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// PaymentCharged confirms a charge.
type PaymentCharged struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
}

// Decline codes.
const (
	DeclineCardDeclined   = "card_declined"
	DeclineProcessing     = "processing_error"
	DeclineOrderCancelled = "order_cancelled"
)

// PaymentDeclined says no money moved.
type PaymentDeclined struct {
	OrderID string `json:"order_id"`
	Code    string `json:"code"`
	Reason  string `json:"reason"`
}

// PaymentRefunded confirms a refund (AmountCents 0 when nothing had been charged).
type PaymentRefunded struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
}

// OrderCreatedV1 is published when an order is accepted.
type OrderCreatedV1 struct {
	OrderID   string    `json:"order_id"`
	UserID    string    `json:"user_id"`
	Items     []Item    `json:"items"`
	CreatedAt time.Time `json:"created_at"`
}

// OrderConfirmedV1 is published when the saga completes. It repeats the
// order's facts so a read model can be built from it alone, whatever order
// events arrive in.
type OrderConfirmedV1 struct {
	OrderID    string       `json:"order_id"`
	UserID     string       `json:"user_id"`
	Items      []PricedItem `json:"items"`
	TotalCents int64        `json:"total_cents"`
	CreatedAt  time.Time    `json:"created_at"`
}

// OrderCancelledV1 is published when the saga gives up, after compensation.
type OrderCancelledV1 struct {
	OrderID    string       `json:"order_id"`
	UserID     string       `json:"user_id"`
	Items      []PricedItem `json:"items"`
	TotalCents int64        `json:"total_cents"`
	Reason     string       `json:"reason"`
	CreatedAt  time.Time    `json:"created_at"`
}

// schema is the current version of a subject's payload and its Go type, and
// the name of the constant above that holds the subject (for Catalogue; a
// test checks it against the source).
type schema struct {
	name    string
	version int
	newV    func() any
}

var schemas = map[string]schema{
	InventoryReserve:  {"InventoryReserve", 1, func() any { return new(ReserveStock) }},
	InventoryRelease:  {"InventoryRelease", 1, func() any { return new(ReleaseStock) }},
	PaymentsCharge:    {"PaymentsCharge", 1, func() any { return new(ChargePayment) }},
	PaymentsRefund:    {"PaymentsRefund", 1, func() any { return new(RefundPayment) }},
	InventoryReserved: {"InventoryReserved", 1, func() any { return new(StockReserved) }},
	InventoryRejected: {"InventoryRejected", 1, func() any { return new(StockRejected) }},
	InventoryReleased: {"InventoryReleased", 1, func() any { return new(StockReleased) }},
	PaymentsCharged:   {"PaymentsCharged", 1, func() any { return new(PaymentCharged) }},
	PaymentsDeclined:  {"PaymentsDeclined", 1, func() any { return new(PaymentDeclined) }},
	PaymentsRefunded:  {"PaymentsRefunded", 1, func() any { return new(PaymentRefunded) }},
	OrderCreated:      {"OrderCreated", 1, func() any { return new(OrderCreatedV1) }},
	OrderConfirmed:    {"OrderConfirmed", 1, func() any { return new(OrderConfirmedV1) }},
	OrderCancelled:    {"OrderCancelled", 1, func() any { return new(OrderCancelledV1) }},
}

// Subjects lists every known subject.
func Subjects() []string {
	out := make([]string, 0, len(schemas))
	for s := range schemas {
		out = append(out, s)
	}
	return out
}

// Envelope wraps every payload on the wire.
type Envelope struct {
	ID         string          `json:"id"`
	Subject    string          `json:"subject"`
	Version    int             `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// New wraps data for subject with a fresh time-ordered id and the subject's
// current schema version. data must be the subject's payload type.
func New(subject string, data any) (Envelope, error) {
	sc, ok := schemas[subject]
	if !ok {
		return Envelope{}, fmt.Errorf("new event: unknown subject %q", subject)
	}
	want := reflect.TypeOf(sc.newV())
	if got := reflect.TypeOf(data); got != want && got != want.Elem() {
		return Envelope{}, fmt.Errorf("new event %s: payload is %v, want %v", subject, got, want.Elem())
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("new event %s: %w", subject, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, fmt.Errorf("new event %s: %w", subject, err)
	}
	return Envelope{ID: id.String(), Subject: subject, Version: sc.version, OccurredAt: time.Now().UTC(), Data: raw}, nil
}

// Parse decodes a wire message into its envelope and typed payload (a pointer
// to the subject's payload type). It is a tolerant reader: fields it does not
// know, in the envelope or the payload, are ignored, so a producer may add
// fields within a version without breaking consumers. Unknown subjects,
// unsupported versions and malformed JSON are errors: such a message is
// poison and gets parked.
func Parse(raw []byte) (Envelope, any, error) {
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return Envelope{}, nil, fmt.Errorf("decode envelope: %w", err)
	}
	if env.ID == "" {
		return Envelope{}, nil, fmt.Errorf("decode envelope: missing id")
	}
	sc, ok := schemas[env.Subject]
	if !ok {
		return env, nil, fmt.Errorf("decode %s: unknown subject", env.Subject)
	}
	if env.Version != sc.version {
		return env, nil, fmt.Errorf("decode %s: unsupported version %d (want %d)", env.Subject, env.Version, sc.version)
	}
	v := sc.newV()
	if err := json.Unmarshal(env.Data, v); err != nil {
		return env, nil, fmt.Errorf("decode %s: %w", env.Subject, err)
	}
	return env, v, nil
}
