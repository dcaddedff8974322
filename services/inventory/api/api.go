// Package api is the inventory service's HTTP interface: the public catalogue and the internal
// reservation endpoints.
package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/msctl/msctl/services/inventory/app"
	"github.com/msctl/msctl/services/inventory/domain"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/httpx"
)

// Inventory is what the handlers need from the app layer.
type Inventory interface {
	Products(ctx context.Context) ([]domain.Product, error)
	Product(ctx context.Context, id string) (domain.Product, error)
	Reserve(ctx context.Context, orderID string, items []domain.Item) error
	Release(ctx context.Context, orderID string) error
}

var _ Inventory = (*app.App)(nil)

// Register routes the inventory endpoints on mux.
func Register(mux *http.ServeMux, inv Inventory) {
	h := &handlers{inv: inv}
	mux.HandleFunc("GET /api/v1/products", h.products)
	mux.HandleFunc("GET /internal/products/{id}", h.product)
	mux.HandleFunc("POST /internal/reservations", h.reserve)
	mux.HandleFunc("DELETE /internal/reservations/{order_id}", h.release)
}

type handlers struct {
	inv Inventory
}

type productJSON struct {
	ID         string `json:"id"`
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int    `json:"stock"`
}

func toJSON(p domain.Product) productJSON {
	return productJSON{ID: p.ID, SKU: p.SKU, Name: p.Name, PriceCents: p.PriceCents, Stock: p.Stock}
}

func (h *handlers) products(w http.ResponseWriter, r *http.Request) {
	ps, err := h.inv.Products(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := make([]productJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, toJSON(p))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (h *handlers) product(w http.ResponseWriter, r *http.Request) {
	p, err := h.inv.Product(r.Context(), r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, mapErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(p))
}

func (h *handlers) reserve(w http.ResponseWriter, r *http.Request) {
	var in struct {
		OrderID string `json:"order_id"`
		Items   []struct {
			ProductID string `json:"product_id"`
			Quantity  int    `json:"quantity"`
		} `json:"items"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	items := make([]domain.Item, 0, len(in.Items))
	for _, it := range in.Items {
		items = append(items, domain.Item{ProductID: it.ProductID, Quantity: it.Quantity})
	}
	if err := h.inv.Reserve(r.Context(), in.OrderID, items); err != nil {
		httpx.WriteError(w, r, mapErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"order_id": in.OrderID, "status": "reserved"})
}

func (h *handlers) release(w http.ResponseWriter, r *http.Request) {
	if err := h.inv.Release(r.Context(), r.PathValue("order_id")); err != nil {
		httpx.WriteError(w, r, mapErr(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func mapErr(err error) error {
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		return errs.BadRequest("invalid_request", ve.Message)
	case errors.Is(err, domain.ErrInsufficientStock):
		return errs.Conflict("insufficient_stock", err.Error())
	case errors.Is(err, domain.ErrUnknownProduct):
		return errs.BadRequest("unknown_product", err.Error())
	case errors.Is(err, domain.ErrReleased):
		return errs.Conflict("reservation_released", "the reservation for this order was already released")
	case errors.Is(err, domain.ErrNotFound):
		return errs.NotFound("product_not_found", "product not found")
	}
	return err
}
