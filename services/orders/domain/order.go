// Package domain holds the order rules: what a valid order is, and the saga
// that takes it from PENDING to CONFIRMED or CANCELLED.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Order statuses.
const (
	StatusPending   = "PENDING"
	StatusConfirmed = "CONFIRMED"
	StatusCancelled = "CANCELLED"
)

// Limits on one order.
const (
	MaxItems      = 50
	MaxQuantity   = 1000
	MaxProductID  = 64
	MaxIdemKeyLen = 128
	minCardDigits = 12
	maxCardDigits = 19
)

// ErrNotFound says there is no such order for this user.
var ErrNotFound = errors.New("order not found")

// ValidationError is bad client input; its message is safe to show.
type ValidationError struct{ Message string }

func (e *ValidationError) Error() string { return e.Message }

func invalid(format string, args ...any) error {
	return &ValidationError{Message: fmt.Sprintf(format, args...)}
}

// Item is one order line. UnitPriceCents is known once inventory reserved
// the stock (prices come from the StockReserved reply).
type Item struct {
	ProductID      string `json:"product_id"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents *int64 `json:"unit_price_cents,omitempty"`
}

// Order is the write model of an order.
type Order struct {
	ID         string
	UserID     string
	Status     string
	Reason     string
	Items      []Item
	TotalCents int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Validate checks a new order's lines and card number.
func Validate(userID string, items []Item, card, idemKey string) error {
	if userID == "" {
		return invalid("a user is required")
	}
	if len(items) == 0 {
		return invalid("items must not be empty")
	}
	if len(items) > MaxItems {
		return invalid("at most %d items per order", MaxItems)
	}
	for i, it := range items {
		if it.ProductID == "" || len(it.ProductID) > MaxProductID {
			return invalid("items[%d].product_id must be 1..%d characters", i, MaxProductID)
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return invalid("items[%d].quantity must be between 1 and %d", i, MaxQuantity)
		}
	}
	if len(card) < minCardDigits || len(card) > maxCardDigits {
		return invalid("card_number must be %d to %d digits", minCardDigits, maxCardDigits)
	}
	for _, c := range card {
		if c < '0' || c > '9' {
			return invalid("card_number must contain digits only")
		}
	}
	if len(idemKey) > MaxIdemKeyLen {
		return invalid("Idempotency-Key must be at most %d characters", MaxIdemKeyLen)
	}
	return nil
}
