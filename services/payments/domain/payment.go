// Package domain holds the payments rules: which test cards decline or fail,
// and what a payment's status means.
package domain

import (
	"time"
)

// Payment statuses. A payment row exists per order at most once.
const (
	StatusCharged  = "CHARGED"  // money taken
	StatusDeclined = "DECLINED" // the card was refused; nothing taken
	StatusFailed   = "FAILED"   // processing error; nothing taken
	StatusRefunded = "REFUNDED" // charged, then given back
	StatusVoided   = "VOIDED"   // refunded before any charge: a late charge is refused
)

// Test cards with a fixed outcome; every other well-formed number is charged.
const (
	CardDeclined        = "4000000000000002"
	CardProcessingError = "4000000000000119"
)

// Payment is one order's payment.
type Payment struct {
	OrderID     string
	UserID      string
	Status      string
	AmountCents int64
	CardLast4   string
	Reason      string
	CreatedAt   time.Time
	RefundedAt  *time.Time
}

// Outcome is what the card network answers for a charge.
type Outcome struct {
	Status string // StatusCharged, StatusDeclined or StatusFailed
	Reason string
}

// Authorize decides a charge of amount on card.
func Authorize(card string, amount int64) Outcome {
	switch {
	case !wellFormed(card):
		return Outcome{StatusDeclined, "invalid card number"}
	case amount <= 0:
		return Outcome{StatusDeclined, "invalid amount"}
	case card == CardDeclined:
		return Outcome{StatusDeclined, "card declined"}
	case card == CardProcessingError:
		return Outcome{StatusFailed, "processing error"}
	}
	return Outcome{StatusCharged, ""}
}

// Last4 is the part of a card number that may be stored and shown.
func Last4(card string) string {
	if len(card) < 4 {
		return card
	}
	return card[len(card)-4:]
}

func wellFormed(card string) bool {
	if len(card) < 12 || len(card) > 19 {
		return false
	}
	for _, c := range card {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
