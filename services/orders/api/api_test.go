package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/msctl/msctl/services/kit/auth/authtest"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/orders/api"
)

// A refused rebuild (see app.RebuildReadModel) reaches the caller as a 409
// whose JSON error says why.
func TestRefusedRebuildAnswers409(t *testing.T) {
	mux := http.NewServeMux()
	const why = "refusing to rebuild the read model: stream ORDERS_EVT starts at sequence 3"
	api.Register(mux, authtest.Verifier(), nil, func(context.Context) (int, error) {
		return 0, errs.Conflict("history_lost", why)
	})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/internal/read-model/rebuild", nil))
	var body errs.Body
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusConflict || body.Error.Code != "history_lost" || body.Error.Message != why {
		t.Fatalf("answered %d %+v", rec.Code, body)
	}
}
