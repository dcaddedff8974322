// Package api is the payments service's HTTP interface; all of it is
// internal (the gateway never routes /internal/...).
package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/payments/app"
	"github.com/msctl/msctl/services/payments/domain"
)

// Payments is what the handlers need from the app layer.
type Payments interface {
	Payment(ctx context.Context, orderID string) (domain.Payment, error)
	Faults() *app.Faults
}

var _ Payments = (*app.App)(nil)

// Register routes the payments endpoints on mux.
func Register(mux *http.ServeMux, p Payments) {
	h := &handlers{p: p}
	mux.HandleFunc("GET /internal/payments", h.payment)
	mux.HandleFunc("GET /internal/faults", h.getFaults)
	mux.HandleFunc("POST /internal/faults", h.setFaults)
}

type handlers struct{ p Payments }

type paymentJSON struct {
	OrderID     string     `json:"order_id"`
	Status      string     `json:"status"`
	AmountCents int64      `json:"amount_cents"`
	CardLast4   string     `json:"card_last4"`
	Reason      string     `json:"reason,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	RefundedAt  *time.Time `json:"refunded_at,omitempty"`
}

func (h *handlers) payment(w http.ResponseWriter, r *http.Request) {
	orderID := r.URL.Query().Get("order_id")
	if orderID == "" {
		httpx.WriteError(w, r, errs.BadRequest("missing_order_id", "query parameter order_id is required"))
		return
	}
	p, err := h.p.Payment(r.Context(), orderID)
	switch {
	case errors.Is(err, app.ErrNotFound):
		httpx.WriteError(w, r, errs.NotFound("payment_not_found", "no payment for this order"))
		return
	case errors.Is(err, app.ErrInjected):
		httpx.WriteError(w, r, errs.Unavailable("injected_failure", "payments is failing on purpose (fault knob)"))
		return
	case err != nil:
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, paymentJSON{
		OrderID: p.OrderID, Status: p.Status, AmountCents: p.AmountCents, CardLast4: p.CardLast4,
		Reason: p.Reason, CreatedAt: p.CreatedAt.UTC(), RefundedAt: p.RefundedAt,
	})
}

func (h *handlers) getFaults(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, h.p.Faults().Get())
}

func (h *handlers) setFaults(w http.ResponseWriter, r *http.Request) {
	var in struct {
		FailureRate float64 `json:"failure_rate"`
		LatencyMS   int64   `json:"latency_ms"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if err := h.p.Faults().Set(in.FailureRate, time.Duration(in.LatencyMS)*time.Millisecond); err != nil {
		httpx.WriteError(w, r, errs.BadRequest("invalid_faults", err.Error()))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h.p.Faults().Get())
}
