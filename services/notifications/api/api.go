// Package api is the notifications service's HTTP interface.
package api

import (
	"context"
	"net/http"
	"time"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/notifications/app"
	"github.com/msctl/msctl/services/notifications/domain"
)

// Notifications is what the handlers need from the app layer.
type Notifications interface {
	List(ctx context.Context, userID, orderID string) ([]domain.Notification, error)
}

var _ Notifications = (*app.App)(nil)

// Register routes the notifications endpoints on mux. users tells whom a
// request acts for, from its verified bearer token.
func Register(mux *http.ServeMux, users auth.Users, n Notifications) {
	h := &handlers{users: users, n: n}
	mux.HandleFunc("GET /api/v1/notifications", h.list)
}

type handlers struct {
	users auth.Users
	n     Notifications
}

type notificationJSON struct {
	ID        string    `json:"id"`
	OrderID   string    `json:"order_id"`
	Kind      string    `json:"kind"`
	Message   string    `json:"message"`
	CreatedAt time.Time `json:"created_at"`
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	user, ok := h.users.User(w, r)
	if !ok {
		return
	}
	ns, err := h.n.List(r.Context(), user, r.URL.Query().Get("order_id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := make([]notificationJSON, len(ns))
	for i, n := range ns {
		out[i] = notificationJSON{ID: n.ID, OrderID: n.OrderID, Kind: n.Kind, Message: n.Message, CreatedAt: n.CreatedAt.UTC()}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
