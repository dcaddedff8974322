// Package domain says what the shop tells a customer about an order.
package domain

import (
	"fmt"
	"time"

	"github.com/msctl/msctl/services/kit/events"
)

// Kinds of notification.
const (
	KindOrderConfirmed = "order_confirmed"
	KindOrderCancelled = "order_cancelled"
)

// Notification is one message to a user about one order.
type Notification struct {
	ID        string
	OrderID   string
	UserID    string
	Kind      string
	Message   string
	CreatedAt time.Time
}

// FromEvent turns an order event into the notification it causes; ok is
// false for events that notify nobody.
func FromEvent(payload any) (n Notification, ok bool) {
	switch e := payload.(type) {
	case *events.OrderConfirmedV1:
		return Notification{OrderID: e.OrderID, UserID: e.UserID, Kind: KindOrderConfirmed,
			Message: fmt.Sprintf("Your order %s is confirmed: %s charged.", e.OrderID, money(e.TotalCents))}, true
	case *events.OrderCancelledV1:
		return Notification{OrderID: e.OrderID, UserID: e.UserID, Kind: KindOrderCancelled,
			Message: fmt.Sprintf("Your order %s was cancelled: %s.", e.OrderID, e.Reason)}, true
	}
	return Notification{}, false
}

func money(cents int64) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }
