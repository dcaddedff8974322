package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/kit/logx"
	"github.com/msctl/msctl/services/kit/registry"
)

// flaky is a real upstream whose behaviour the test switches: healthy, 500, or hanging up.
type flaky struct {
	mode  atomic.Int32 // 0 ok, 1 500, 2 close the connection
	calls atomic.Int32
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	switch f.mode.Load() {
	case 1:
		http.Error(w, `{"error":{"code":"boom","message":"down"}}`, http.StatusInternalServerError)
	case 2:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true,"id":"` + r.Header.Get("X-Request-ID") + `"}`))
	}
}

func upstream(t *testing.T, name string) (*flaky, *client.Client) {
	t.Helper()
	f := &flaky{}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	picker := registry.NewStatic(map[string][]string{name: {strings.TrimPrefix(ts.URL, "http://")}})
	c := client.New(name, picker, client.Options{
		Timeout:          2 * time.Second,
		Retries:          -1,
		FailureThreshold: 3,
		OpenTimeout:      200 * time.Millisecond,
	})
	return f, c
}

// debug serves /debug/breakers the way every service does.
var debug = httptest.NewServer(httpx.New(httpx.Options{Service: "client-test"}).Handler())

func TestMain(m *testing.M) {
	// tracing.Setup installs W3C propagation in every service; without a provider the incoming
	// trace context passes through unchanged.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	code := m.Run()
	debug.Close()
	os.Exit(code)
}

// breakerEntry is one element of GET /debug/breakers, decoded independently of BreakerStatus.
type breakerEntry struct {
	Name                string  `json:"name"`
	State               string  `json:"state"`
	Requests            *uint32 `json:"requests"`
	TotalFailures       *uint32 `json:"total_failures"`
	ConsecutiveFailures *uint32 `json:"consecutive_failures"`
	OpenUntil           *string `json:"open_until"`
}

func breakerState(t *testing.T, name string) breakerEntry {
	t.Helper()
	resp, err := http.Get(debug.URL + "/debug/breakers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []breakerEntry
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	for _, b := range list {
		if b.Name == name {
			if b.Requests == nil || b.TotalFailures == nil || b.ConsecutiveFailures == nil {
				t.Fatalf("breaker entry lacks counts: %+v", b)
			}
			if b.OpenUntil != nil {
				if _, err := time.Parse(time.RFC3339, *b.OpenUntil); err != nil {
					t.Fatalf("open_until %q is not RFC3339", *b.OpenUntil)
				}
			}
			return b
		}
	}
	t.Fatalf("breaker %s not listed in %+v", name, list)
	return breakerEntry{}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode int32
	}{{"status500", 1}, {"hangup", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			name := "breaker-" + tt.name
			f, c := upstream(t, name)
			ctx := context.Background()
			var out map[string]any
			if err := c.Do(ctx, "GET", "/x", nil, &out); err != nil || out["ok"] != true {
				t.Fatalf("healthy call: %v %v", err, out)
			}

			f.mode.Store(tt.mode)
			for i := range 3 {
				if err := c.Do(ctx, "GET", "/x", nil, nil); err == nil {
					t.Fatalf("call %d against a failing upstream succeeded", i)
				}
			}
			st := breakerState(t, name)
			if st.State != "open" || st.OpenUntil == nil {
				t.Fatalf("after 3 failures: %+v", st)
			}
			before := f.calls.Load()
			err := c.Do(ctx, "GET", "/x", nil, nil)
			var e *errs.Error
			if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || f.calls.Load() != before {
				t.Fatalf("open breaker: err %v, upstream calls %d→%d; want a fast 503", err, before, f.calls.Load())
			}

			f.mode.Store(0)
			deadline := time.Now().Add(5 * time.Second)
			for breakerState(t, name).State != "half-open" {
				if time.Now().After(deadline) {
					t.Fatalf("breaker never turned half-open: %+v", breakerState(t, name))
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := c.Do(ctx, "GET", "/x", nil, nil); err != nil {
				t.Fatalf("probe call: %v", err)
			}
			if st := breakerState(t, name); st.State != "closed" || st.OpenUntil != nil {
				t.Fatalf("after recovery: %+v", st)
			}
		})
	}
}

func TestRetriesIdempotentOnly(t *testing.T) {
	f := &flaky{}
	var fails atomic.Int32
	fails.Store(2)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(-1) >= 0 {
			f.calls.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	picker := registry.NewStatic(map[string][]string{"retry": {strings.TrimPrefix(ts.URL, "http://")}})
	c := client.New("retry", picker, client.Options{Retries: 2, RetryWait: time.Millisecond})

	if err := c.Do(context.Background(), "GET", "/x", nil, nil); err != nil {
		t.Fatalf("GET with two transient failures: %v", err)
	}
	if f.calls.Load() != 3 {
		t.Fatalf("%d calls, want 3 (two retries)", f.calls.Load())
	}

	fails.Store(1)
	err := c.Do(context.Background(), "POST", "/x", map[string]int{"a": 1}, nil)
	var e *errs.Error
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("POST without Idempotency-Key: %v, want the 503 unretried", err)
	}
}

func TestTimeoutAndNoInstance(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	t.Cleanup(ts.Close)
	picker := registry.NewStatic(map[string][]string{"slow": {strings.TrimPrefix(ts.URL, "http://")}})
	c := client.New("slow", picker, client.Options{Timeout: 100 * time.Millisecond})
	var e *errs.Error
	if err := c.Do(context.Background(), "GET", "/x", nil, nil); !errors.As(err, &e) || e.Status != http.StatusGatewayTimeout {
		t.Fatalf("slow upstream: %v, want 504", err)
	}

	c = client.New("nobody", picker, client.Options{Retries: -1})
	if err := c.Do(context.Background(), "GET", "/x", nil, nil); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || !errors.Is(err, registry.ErrNoInstances) {
		t.Fatalf("no instance: %v, want 503 wrapping ErrNoInstances", err)
	}
}

func TestUpstreamErrorPassesThrough(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"user_not_found","message":"user not found"}}`))
	}))
	t.Cleanup(ts.Close)
	c := client.New("users-404", registry.NewStatic(map[string][]string{"users-404": {strings.TrimPrefix(ts.URL, "http://")}}), client.Options{})
	err := c.Do(context.Background(), "GET", "/internal/users/1", nil, nil)
	var e *errs.Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "user_not_found" {
		t.Fatalf("404 = %v", err)
	}
	if st := c.Breaker(); st.State != "closed" || st.TotalFailures != 0 {
		t.Fatalf("a 404 counted against the breaker: %+v", st)
	}
}

func TestRedirectIsReturnedNotFollowed(t *testing.T) {
	var followed atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Store(true)
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(ts.Close)
	picker := registry.NewStatic(map[string][]string{"redir": {strings.TrimPrefix(ts.URL, "http://")}})
	c := client.New("redir", picker, client.Options{})

	status, _, err := c.Get(context.Background(), "/start", http.Header{"X-Probe": {"1"}})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	resp, err := c.Send(context.Background(), &client.Request{Method: "GET", URL: &url.URL{Path: "/start"}})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	defer resp.Body.Close()
	if status != http.StatusFound || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/elsewhere" || followed.Load() {
		t.Fatalf("status %d/%d, location %q, followed %v: want the 302 handed back unfollowed",
			status, resp.StatusCode, resp.Header.Get("Location"), followed.Load())
	}
}

func TestSendBodies(t *testing.T) {
	var fails atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if fails.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(ts.Close)
	picker := registry.NewStatic(map[string][]string{"bodies": {strings.TrimPrefix(ts.URL, "http://")}})
	c := client.New("bodies", picker, client.Options{Retries: 2, RetryWait: time.Millisecond})

	limited := func(s string, limit int64) io.Reader {
		rec := httptest.NewRecorder()
		return http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(s)), limit)
	}
	tests := []struct {
		name       string
		method     string
		body       io.Reader
		length     int64
		fails      int32
		wantStatus int    // of the answer, or of the *errs.Error
		wantBody   string // echoed by the upstream
	}{
		{"streamed, unknown length", "POST", strings.NewReader("stream me"), -1, 0, 200, "stream me"},
		{"known length", "POST", strings.NewReader("12345"), 5, 0, 200, "12345"},
		{"resent whole on retry", "PUT", strings.NewReader("again"), 5, 2, 200, "again"},
		{"over the limit, streamed", "POST", limited(strings.Repeat("x", 100), 10), -1, 0, http.StatusRequestEntityTooLarge, ""},
		{"over the limit, buffered for retries", "PUT", limited(strings.Repeat("x", 100), 10), -1, 0, http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fails.Store(tt.fails)
			resp, err := c.Send(context.Background(), &client.Request{Method: tt.method, URL: &url.URL{Path: "/echo"}, Body: tt.body, ContentLength: tt.length})
			if err != nil {
				var e *errs.Error
				if !errors.As(err, &e) || e.Status != tt.wantStatus {
					t.Fatalf("err %v, want status %d", err, tt.wantStatus)
				}
				return
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || string(got) != tt.wantBody {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, got, tt.wantStatus, tt.wantBody)
			}
		})
	}
	// Bodies the caller could not supply are not the upstream's failures.
	if st := c.Breaker(); st.ConsecutiveFailures != 0 || st.State != "closed" {
		t.Fatalf("breaker after caller-side body errors: %+v", st)
	}
}

func TestTraceContextAndRequestID(t *testing.T) {
	type seen struct{ traceparent, requestID, userAgent string }
	got := make(chan seen, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("Traceparent"), r.Header.Get("X-Request-ID"), r.Header.Get("User-Agent")}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(ts.Close)
	c := client.New("traced", registry.NewStatic(map[string][]string{"traced": {strings.TrimPrefix(ts.URL, "http://")}}), client.Options{})

	traceID := trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := logx.WithRequestID(trace.ContextWithRemoteSpanContext(context.Background(), sc), "req-7")

	tests := []struct {
		name string
		call func() error
		// resty carries Do and Get (the design's client); Send streams over net/http.
		agent string
	}{
		{"Do", func() error { return c.Do(ctx, "POST", "/x", map[string]int{"a": 1}, nil) }, "go-resty/"},
		{"Get", func() error { _, _, err := c.Get(ctx, "/x", nil); return err }, "go-resty/"},
		{"Send", func() error {
			resp, err := c.Send(ctx, &client.Request{Method: "GET", URL: &url.URL{Path: "/x"}})
			if err == nil {
				resp.Body.Close()
			}
			return err
		}, "Go-http-client/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			s := <-got
			if !strings.HasPrefix(s.traceparent, "00-"+traceID.String()+"-") || s.requestID != "req-7" || !strings.HasPrefix(s.userAgent, tt.agent) {
				t.Fatalf("upstream saw %+v; want trace %s, request id req-7, agent %s*", s, traceID, tt.agent)
			}
		})
	}
}
