package domain

import "time"

// Saga is the persisted state of one order's saga.
type Saga struct {
	OrderID string
	Step    Step
	Reason  string
	// Card is the card number sealed for payments (kit/vault), kept until
	// the charge step is over; never the number itself.
	Card      string
	Attempts  int
	UpdatedAt time.Time
}

// View is one row of the read model: an order as the order events describe it.
type View struct {
	OrderID    string
	UserID     string
	Status     string
	Reason     string
	Items      []Item
	TotalCents int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}
