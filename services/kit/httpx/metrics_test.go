package httpx

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/metrics/metricstest"
)

func TestRequestsAreMeasuredPerRoute(t *testing.T) {
	m := metricstest.Setup(t)
	s, ts := newServer(t, &bytes.Buffer{})
	s.HandleMetrics(m.Handler())
	fails := 0
	s.Mux.HandleFunc("GET /flaky/{id}", func(w http.ResponseWriter, r *http.Request) {
		// Every third request fails, as an injected error rate would.
		fails++
		if fails%3 == 0 {
			WriteError(w, r, errs.Unavailable("down", "down"))
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})

	const n = 30
	for i := range n {
		do(t, ts, "GET", "/flaky/"+string(rune('a'+i%26)), "", nil)
		do(t, ts, "GET", "/healthz", "", nil)
		do(t, ts, "GET", "/readyz", "", nil)
		do(t, ts, "GET", "/metrics", "", nil)
	}
	do(t, ts, "GET", "/nowhere", "", nil)
	do(t, ts, "GET", "/proxy/a/x", "", nil)
	do(t, ts, "BREW", "/proxy/a/x", "", nil)

	f := metricstest.Scrape(t, m.Handler())
	route := map[string]string{"http_route": "/flaky/{id}", "http_request_method": "GET"}
	if got := f.Count(metricstest.ServerDuration, route); got != n {
		t.Errorf("route /flaky/{id} counted %d requests, want %d", got, n)
	}
	route["http_response_status_code"] = "503"
	if got := f.Count(metricstest.ServerDuration, route); got != n/3 {
		t.Errorf("route /flaky/{id} counted %d 503s, want %d", got, n/3)
	}
	if got := f.Count(metricstest.ServerDuration, map[string]string{"http_route": "unmatched", "http_response_status_code": "404"}); got != 1 {
		t.Errorf("unmatched 404s = %d, want 1", got)
	}
	if got := f.Count(metricstest.ServerDuration, map[string]string{"http_route": "/proxy/a"}); got != 2 {
		t.Errorf("SetRoute's route counted %d, want 2", got)
	}
	if got := f.Count(metricstest.ServerDuration, map[string]string{"http_request_method": "_OTHER"}); got != 1 {
		t.Errorf("an unknown method counted %d times as _OTHER, want 1", got)
	}
	for _, l := range f.Labels(metricstest.ServerDuration) {
		switch l["http_route"] {
		case "/healthz", "/readyz", "/metrics", "/debug/breakers":
			t.Errorf("probe or scrape route measured: %v", l)
		}
	}
}
