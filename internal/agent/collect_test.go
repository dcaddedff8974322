package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/services/kit/breakers"
)

// fetchBreakers decodes the wire shape kit serves and converts it to the
// snapshot's: the service filled in, an open breaker's deadline kept, a
// closed one's zero, entries sorted by name.
func TestFetchBreakersConvertsTheWireShape(t *testing.T) {
	until := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/breakers" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode([]breakers.Status{
			{Name: "users", State: "closed", Requests: 3, TotalSuccesses: 3},
			{Name: "payments", State: "open", TotalFailures: 7, ConsecutiveSuccesses: 0, ConsecutiveFailures: 5, OpenUntil: &until},
		})
	}))
	defer srv.Close()

	got, err := fetchBreakers(t.Context(), "gateway", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	want := []state.Breaker{
		{Service: "gateway", Name: "payments", State: "open", TotalFailures: 7, ConsecutiveFailures: 5, OpenUntil: until},
		{Service: "gateway", Name: "users", State: "closed", Requests: 3, TotalSuccesses: 3},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("breaker %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
