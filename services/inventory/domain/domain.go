// Package domain holds the inventory service's types and the rules a reservation must satisfy.
package domain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Limits on a reservation request, so one request cannot hold row locks on the whole catalogue
// or overflow stock arithmetic.
const (
	MaxItems      = 100
	MaxQuantity   = 1_000_000
	MaxOrderIDLen = 128
	MaxProductID  = 128
)

var (
	// ErrInsufficientStock means some item has less stock than requested; nothing was reserved.
	ErrInsufficientStock = errors.New("insufficient stock")
	// ErrUnknownProduct means some item names no product; nothing was reserved.
	ErrUnknownProduct = errors.New("unknown product")
	// ErrReleased means the order's reservation was already released (or the release arrived
	// first); a late reserve must not take stock for an order that was given up.
	ErrReleased = errors.New("reservation already released")
	// ErrNotFound means no such product.
	ErrNotFound = errors.New("product not found")
)

// Product is a catalogue entry with its available stock.
type Product struct {
	ID         string
	SKU        string
	Name       string
	PriceCents int64
	Stock      int
}

// Item is a quantity of one product in a reservation.
type Item struct {
	ProductID string
	Quantity  int
}

// ValidationError describes a malformed reservation request.
type ValidationError struct {
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

// ValidateOrderID checks an order id used as the reservation key.
func ValidateOrderID(orderID string) error {
	if strings.TrimSpace(orderID) == "" {
		return &ValidationError{"order_id must not be empty"}
	}
	if len(orderID) > MaxOrderIDLen {
		return &ValidationError{fmt.Sprintf("order_id must be at most %d bytes", MaxOrderIDLen)}
	}
	return nil
}

// NormalizeItems validates items and merges repeated products, returning them sorted by product
// id: taking row locks in one global order keeps concurrent reservations from deadlocking.
func NormalizeItems(items []Item) ([]Item, error) {
	if len(items) == 0 {
		return nil, &ValidationError{"items must not be empty"}
	}
	if len(items) > MaxItems {
		return nil, &ValidationError{fmt.Sprintf("at most %d items per reservation", MaxItems)}
	}
	sum := map[string]int{}
	for i, it := range items {
		if strings.TrimSpace(it.ProductID) == "" || len(it.ProductID) > MaxProductID {
			return nil, &ValidationError{fmt.Sprintf("items[%d].product_id is invalid", i)}
		}
		if it.Quantity <= 0 || it.Quantity > MaxQuantity {
			return nil, &ValidationError{fmt.Sprintf("items[%d].quantity must be between 1 and %d", i, MaxQuantity)}
		}
		sum[it.ProductID] += it.Quantity
		if sum[it.ProductID] > MaxQuantity {
			return nil, &ValidationError{fmt.Sprintf("quantity of %s must be at most %d", it.ProductID, MaxQuantity)}
		}
	}
	out := make([]Item, 0, len(sum))
	for id, q := range sum {
		out = append(out, Item{ProductID: id, Quantity: q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProductID < out[j].ProductID })
	return out, nil
}
