package summary

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/services/kit/errs"
)

type answer struct {
	status int
	body   string
	err    error
	hang   bool // wait for the deadline, like a stuck upstream
}

// fakeFetcher answers per service and holds every call until all four have
// started, so a sequential implementation would miss its deadline.
type fakeFetcher struct {
	answers map[string]answer
	arrived sync.WaitGroup
	all     chan struct{}
	once    sync.Once

	mu    sync.Mutex
	calls map[string]string // service → path
	auths map[string]string // service → Authorization header
}

func newFake(answers map[string]answer) *fakeFetcher {
	f := &fakeFetcher{answers: answers, all: make(chan struct{}), calls: map[string]string{}, auths: map[string]string{}}
	f.arrived.Add(len(Services))
	go func() { f.arrived.Wait(); close(f.all) }()
	return f
}

func (f *fakeFetcher) Get(ctx context.Context, service, path, authorization string) (int, []byte, error) {
	f.mu.Lock()
	f.calls[service], f.auths[service] = path, authorization
	f.mu.Unlock()
	f.arrived.Done()
	select {
	case <-f.all:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	a, ok := f.answers[service]
	if !ok {
		a = answer{status: http.StatusOK, body: okBodies[service]}
	}
	if a.hang {
		<-ctx.Done()
		return 0, nil, ctx.Err()
	}
	return a.status, []byte(a.body), a.err
}

var okBodies = map[string]string{
	"orders":        `{"id":"o1","user_id":"u1","status":"CONFIRMED","items":[],"total_cents":500,"created_at":"2024-01-01T00:00:00Z"}`,
	"payments":      `{"order_id":"o1","status":"CHARGED","amount_cents":500}`,
	"users":         `{"id":"u1","email":"a@example.com","name":"A"}`,
	"notifications": `[{"id":"n1","order_id":"o1","kind":"order_confirmed","message":"ok","created_at":"2024-01-01T00:00:00Z"}]`,
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestBuild(t *testing.T) {
	down := errs.Unavailable("upstream_unavailable", "down")
	tests := []struct {
		name         string
		answers      map[string]answer
		wantStatus   int // 0 = success
		wantDegraded []string
		wantNull     []string
	}{
		{"all parts", nil, 0, []string{}, nil},
		{"payments down", map[string]answer{"payments": {err: down}}, 0, []string{"payment"}, []string{"payment"}},
		{"no payment yet", map[string]answer{"payments": {status: 404, body: `{"error":{"code":"not_found","message":"x"}}`}}, 0, []string{}, []string{"payment"}},
		{"payments slow", map[string]answer{"payments": {hang: true}}, 0, []string{"payment"}, []string{"payment"}},
		{"users 500", map[string]answer{"users": {status: 500, body: `oops`}}, 0, []string{"user"}, []string{"user"}},
		{"notifications garbage", map[string]answer{"notifications": {status: 200, body: `[{"id":`}}, 0, []string{"notifications"}, []string{"notifications"}},
		{"notifications object not list", map[string]answer{"notifications": {status: 200, body: `{}`}}, 0, []string{"notifications"}, []string{"notifications"}},
		{"everything but orders down", map[string]answer{"payments": {err: down}, "users": {hang: true}, "notifications": {err: down}}, 0,
			[]string{"payment", "user", "notifications"}, []string{"payment", "user", "notifications"}},
		{"order not found", map[string]answer{"orders": {status: 404, body: `{"error":{"code":"not_found","message":"no"}}`}}, 404, nil, nil},
		{"order id rejected", map[string]answer{"orders": {status: 400, body: `{"error":{"code":"invalid_id","message":"bad id"}}`}}, 400, nil, nil},
		{"orders down", map[string]answer{"orders": {err: down}}, 503, nil, nil},
		{"orders slow", map[string]answer{"orders": {hang: true}}, 503, nil, nil},
		{"orders 500", map[string]answer{"orders": {status: 500, body: `{}`}}, 503, nil, nil},
		{"orders garbage", map[string]answer{"orders": {status: 200, body: `not json`}}, 503, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(tt.answers)
			a := New(f, 300*time.Millisecond, quiet())
			s, err := a.Build(context.Background(), "o1", "u1", "Bearer t")
			if tt.wantStatus != 0 {
				var e *errs.Error
				if !errors.As(err, &e) || e.Status != tt.wantStatus {
					t.Fatalf("Build err = %v, want status %d", err, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if !reflect.DeepEqual(s.Degraded, tt.wantDegraded) {
				t.Fatalf("degraded = %v, want %v", s.Degraded, tt.wantDegraded)
			}
			out, err := json.Marshal(s)
			if err != nil {
				t.Fatalf("marshal summary: %v", err)
			}
			var decoded map[string]json.RawMessage
			if err := json.Unmarshal(out, &decoded); err != nil {
				t.Fatalf("summary is not JSON: %v", err)
			}
			for _, k := range []string{"order", "payment", "user", "notifications", "degraded"} {
				if _, ok := decoded[k]; !ok {
					t.Fatalf("summary lacks %q: %s", k, out)
				}
			}
			for _, k := range tt.wantNull {
				if string(decoded[k]) != "null" {
					t.Fatalf("%s = %s, want null", k, decoded[k])
				}
			}
		})
	}
}

func TestBuildRequests(t *testing.T) {
	f := newFake(nil)
	if _, err := New(f, time.Second, quiet()).Build(context.Background(), "a b/c", "u 1", "Bearer t"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"orders":        "/api/v1/orders/a%20b%2Fc",
		"payments":      "/internal/payments?order_id=a+b%2Fc",
		"users":         "/internal/users/u%201",
		"notifications": "/api/v1/notifications?order_id=a+b%2Fc",
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Fatalf("paths = %v, want %v", f.calls, want)
	}
	// Every part acts for the caller with the caller's own token.
	for svc, a := range f.auths {
		if a != "Bearer t" {
			t.Fatalf("%s called with Authorization %q, want the caller's", svc, a)
		}
	}
}

// FuzzBuild: whatever the upstreams send, the summary is valid JSON or a
// clean *errs.Error, never a panic.
func FuzzBuild(f *testing.F) {
	f.Add(okBodies["orders"], okBodies["payments"], okBodies["users"], okBodies["notifications"], 200)
	f.Add(`{"id":1}`, `null`, `[]`, `{}`, 200)
	f.Add(`{`, `}`, `"x"`, `[1,2`, 404)
	f.Add(` {"a":[{"b":{}}]} `, `{"a":"\u0000"}`, "\xff", ``, 500)
	f.Fuzz(func(t *testing.T, order, payment, user, notes string, paymentStatus int) {
		fk := newFake(map[string]answer{
			"orders":        {status: 200, body: order},
			"payments":      {status: paymentStatus, body: payment},
			"users":         {status: 200, body: user},
			"notifications": {status: 200, body: notes},
		})
		s, err := New(fk, time.Second, quiet()).Build(context.Background(), "o1", "u1", "Bearer t")
		if err != nil {
			var e *errs.Error
			if !errors.As(err, &e) || e.Status < 400 {
				t.Fatalf("error %v is not a client-facing *errs.Error", err)
			}
			return
		}
		out, err := json.Marshal(s)
		if err != nil || !json.Valid(out) {
			t.Fatalf("summary does not marshal: %v", err)
		}
		if strings.Count(string(out), `"degraded"`) < 1 {
			t.Fatalf("no degraded list: %s", out)
		}
	})
}
