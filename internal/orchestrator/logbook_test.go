package orchestrator

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// TestLogFilter covers what `msctl logs [svc…] --grep RE --since DUR` asks
// of the kept lines: each filter alone and together, merged across services
// oldest first.
func TestLogFilter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	b := newLogbook(10)
	for _, l := range []state.LogLine{
		{Time: at(0), Service: "users", Text: "users boot"},
		{Time: at(1), Service: "orders", Text: "orders boot"},
		{Time: at(2), Service: "users", Text: "users error: db"},
		{Time: at(3), Service: "orders", Text: "orders error: nats"},
		{Time: at(4), Service: "gateway", Text: "gateway ready"},
	} {
		b.add(l)
	}
	tests := []struct {
		name string
		f    state.LogQuery
		want []string
	}{
		{"everything, oldest first", state.LogQuery{}, []string{"users boot", "orders boot", "users error: db", "orders error: nats", "gateway ready"}},
		{"since", state.LogQuery{Since: at(2)}, []string{"users error: db", "orders error: nats", "gateway ready"}},
		{"since after the last line", state.LogQuery{Since: at(5)}, nil},
		{"services", state.LogQuery{Services: []string{"orders", "gateway"}}, []string{"orders boot", "orders error: nats", "gateway ready"}},
		{"grep", state.LogQuery{Grep: regexp.MustCompile(`error`)}, []string{"users error: db", "orders error: nats"}},
		{"all three", state.LogQuery{Services: []string{"orders"}, Grep: regexp.MustCompile(`error`), Since: at(1)}, []string{"orders error: nats"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, l := range b.query(tt.f) {
				got = append(got, l.Text)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
