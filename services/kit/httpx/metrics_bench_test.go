package httpx

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/msctl/msctl/services/kit/metrics/metricstest"
)

// BenchmarkServeMetrics is the middleware's cost per request with the kit's metrics off and on,
// in process (the gateway benchmark measures the whole binary): on must add no allocation.
func BenchmarkServeMetrics(b *testing.B) {
	s := New(Options{Service: "bench", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	s.Mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/orders/42", nil)
	run := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	b.Run("off", run)
	b.Run("on", func(b *testing.B) {
		metricstest.Setup(b)
		run(b)
	})
}
