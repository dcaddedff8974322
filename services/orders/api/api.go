// Package api is the orders service's HTTP interface.
package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/orders/app"
	"github.com/msctl/msctl/services/orders/domain"
)

// IdempotencyHeader makes a repeated POST return the first order.
const IdempotencyHeader = "Idempotency-Key"

// Orders is what the handlers need from the app layer.
type Orders interface {
	Place(ctx context.Context, userID, idemKey string, items []domain.Item, card string) (domain.Order, bool, error)
	Order(ctx context.Context, userID, id string) (domain.Order, error)
	Orders(ctx context.Context, userID string) ([]domain.View, error)
}

// Rebuilder rebuilds the read model from the event stream.
type Rebuilder func(ctx context.Context) (int, error)

var _ Orders = (*app.App)(nil)

// Register routes the orders endpoints on mux. users tells whom a request
// acts for, from its verified bearer token: the gateway forwards the
// customer's token, and orders trusts no header that only names a user.
func Register(mux *http.ServeMux, users auth.Users, o Orders, rebuild Rebuilder) {
	h := &handlers{users: users, o: o, rebuild: rebuild}
	mux.HandleFunc("POST /api/v1/orders", h.place)
	mux.HandleFunc("GET /api/v1/orders", h.list)
	mux.HandleFunc("GET /api/v1/orders/{id}", h.get)
	mux.HandleFunc("POST /internal/read-model/rebuild", h.rebuildReadModel)
}

type handlers struct {
	users   auth.Users
	o       Orders
	rebuild Rebuilder
}

// OrderJSON is an order on the wire (also the shape of list entries).
type OrderJSON struct {
	ID         string        `json:"id"`
	UserID     string        `json:"user_id"`
	Status     string        `json:"status"`
	Items      []domain.Item `json:"items"`
	TotalCents int64         `json:"total_cents"`
	Reason     string        `json:"reason,omitempty"`
	CreatedAt  time.Time     `json:"created_at"`
}

func (h *handlers) place(w http.ResponseWriter, r *http.Request) {
	uid, ok := h.users.User(w, r)
	if !ok {
		return
	}
	var in struct {
		Items      []domain.Item `json:"items"`
		CardNumber string        `json:"card_number"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	for _, it := range in.Items {
		if it.UnitPriceCents != nil {
			httpx.WriteError(w, r, errs.BadRequest("invalid_order", "unit_price_cents is set by the shop, not the client"))
			return
		}
	}
	o, _, err := h.o.Place(r.Context(), uid, r.Header.Get(IdempotencyHeader), in.Items, in.CardNumber)
	if err != nil {
		httpx.WriteError(w, r, mapErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}{o.ID, o.Status})
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	uid, ok := h.users.User(w, r)
	if !ok {
		return
	}
	o, err := h.o.Order(r.Context(), uid, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, mapErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, OrderJSON{ID: o.ID, UserID: o.UserID, Status: o.Status, Items: o.Items,
		TotalCents: o.TotalCents, Reason: o.Reason, CreatedAt: o.CreatedAt.UTC()})
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	uid, ok := h.users.User(w, r)
	if !ok {
		return
	}
	vs, err := h.o.Orders(r.Context(), uid)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := make([]OrderJSON, len(vs))
	for i, v := range vs {
		out[i] = OrderJSON{ID: v.OrderID, UserID: v.UserID, Status: v.Status, Items: v.Items,
			TotalCents: v.TotalCents, Reason: v.Reason, CreatedAt: v.CreatedAt.UTC()}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (h *handlers) rebuildReadModel(w http.ResponseWriter, r *http.Request) {
	n, err := h.rebuild(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		Events int `json:"events"`
	}{n})
}

func mapErr(err error) error {
	var verr *domain.ValidationError
	switch {
	case errors.As(err, &verr):
		return errs.BadRequest("invalid_order", verr.Message)
	case errors.Is(err, domain.ErrNotFound):
		return errs.NotFound("order_not_found", "no such order")
	case errors.Is(err, app.ErrIdempotencyMismatch):
		return errs.Conflict("idempotency_key_reused", "this Idempotency-Key was used for a different order")
	}
	return err
}
