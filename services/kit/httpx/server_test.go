package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/msctl/msctl/services/kit/httpx/httpxtest"
	"github.com/msctl/msctl/services/kit/logx"
)

type errBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

func newServer(t *testing.T, logs *bytes.Buffer) (*Server, *httptest.Server) {
	t.Helper()
	s := New(Options{Service: "test", Logger: logx.New("test", "debug", logs), MaxBodyBytes: 64})
	s.Mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	s.Mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if err := DecodeJSON(r, &in); err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, in)
	})
	s.Mux.HandleFunc("GET /id", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(logx.RequestID(r.Context())))
	})
	s.Mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {})
	// A catch-all that matches its own table, as the gateway's proxy does.
	s.Mux.HandleFunc("/proxy/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/proxy/a/") {
			SetRoute(w, "/proxy/a")
			return
		}
		SetRoute(w, "")
		http.NotFound(w, r)
	})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func do(t *testing.T, ts *httptest.Server, method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

func TestPanicIs500JSONAndLogged(t *testing.T) {
	var logs bytes.Buffer
	_, ts := newServer(t, &logs)
	resp, body := do(t, ts, "GET", "/panic", "", nil)
	var e errBody
	if resp.StatusCode != 500 || json.Unmarshal(body, &e) != nil || e.Error.Code != "internal" {
		t.Fatalf("panic answered %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "boom") {
		t.Fatalf("panic value leaked to the client: %s", body)
	}
	if !strings.Contains(logs.String(), `"panic":"boom"`) || !strings.Contains(logs.String(), `"stack"`) {
		t.Fatalf("panic not logged with its stack: %s", logs.String())
	}
	// The server survives.
	if resp, _ := do(t, ts, "GET", "/healthz", "", nil); resp.StatusCode != 200 {
		t.Fatalf("healthz after panic = %d", resp.StatusCode)
	}
}

func TestDecodeAndBodyLimit(t *testing.T) {
	_, ts := newServer(t, &bytes.Buffer{})
	tests := []struct {
		name     string
		body     string
		wantCode int
		wantErr  string
	}{
		{"ok", `{"a":1}`, 200, ""},
		{"too large", `{"a":"` + strings.Repeat("x", 100) + `"}`, 413, "body_too_large"},
		{"empty", ``, 400, "invalid_json"},
		{"syntax", `{"a":`, 400, "invalid_json"},
		{"two values", `{"a":1}{"b":2}`, 400, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, ts, "POST", "/echo", tt.body, nil)
			var e errBody
			_ = json.Unmarshal(body, &e)
			if resp.StatusCode != tt.wantCode || e.Error.Code != tt.wantErr || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, body, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	_, ts := newServer(t, &bytes.Buffer{})
	resp, body := do(t, ts, "GET", "/id", "", map[string]string{RequestIDHeader: "abc-123"})
	if resp.Header.Get(RequestIDHeader) != "abc-123" || string(body) != "abc-123" {
		t.Fatalf("incoming id not kept: header %q, handler saw %q", resp.Header.Get(RequestIDHeader), body)
	}
	resp, body = do(t, ts, "GET", "/id", "", nil)
	if id := resp.Header.Get(RequestIDHeader); id == "" || id != string(body) {
		t.Fatalf("generated id: header %q, handler saw %q", id, body)
	}
	resp, _ = do(t, ts, "GET", "/id", "", map[string]string{RequestIDHeader: "bad id\twith spaces"})
	if id := resp.Header.Get(RequestIDHeader); id == "" || strings.ContainsAny(id, " \t") {
		t.Fatalf("invalid incoming id echoed: %q", id)
	}
}

func TestReadyz(t *testing.T) {
	s, ts := newServer(t, &bytes.Buffer{})
	var dbErr atomic.Pointer[error]
	s.AddCheck("db", func(context.Context) error {
		if e := dbErr.Load(); e != nil {
			return *e
		}
		return nil
	})
	s.AddCheck("nats", func(context.Context) error { return nil })

	if resp, body := do(t, ts, "GET", "/readyz", "", nil); resp.StatusCode != 200 {
		t.Fatalf("readyz with passing checks = %d %s", resp.StatusCode, body)
	}
	// A passing /readyz runs the hook (kit.Run registers there) before it
	// answers; a failing one does not.
	var hooked atomic.Int32
	s.SetOnReady(func(context.Context) { hooked.Add(1) })
	do(t, ts, "GET", "/readyz", "", nil)
	if hooked.Load() != 1 {
		t.Fatalf("hook ran %d times for one passing readyz", hooked.Load())
	}
	refused := errors.New("connection refused")
	dbErr.Store(&refused)
	resp, body := do(t, ts, "GET", "/readyz", "", nil)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "connection refused") {
		t.Fatalf("readyz with failing check = %d %s", resp.StatusCode, body)
	}
	if err := s.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "db: connection refused") {
		t.Fatalf("Ready = %v", err)
	}
	if resp, _ := do(t, ts, "GET", "/healthz", "", nil); resp.StatusCode != 200 {
		t.Fatalf("healthz must not depend on checks, got %d", resp.StatusCode)
	}
	dbErr.Store(nil)
	if hooked.Load() != 1 {
		t.Fatalf("hook ran for a failing readyz")
	}
	if resp, _ := do(t, ts, "GET", "/healthz", "", nil); resp.Close {
		t.Fatal("a serving instance closes kept-alive connections")
	}
	s.SetDraining()
	if resp, _ := do(t, ts, "GET", "/readyz", "", nil); resp.StatusCode != 503 {
		t.Fatalf("readyz while draining = %d", resp.StatusCode)
	}
	// Draining, every answer closes its connection: no client reuses one
	// that Shutdown is about to close.
	if resp, _ := do(t, ts, "GET", "/healthz", "", nil); !resp.Close || hooked.Load() != 1 {
		t.Fatalf("draining: Close = %v, hook ran %d times", resp.Close, hooked.Load())
	}
}

func TestLogsCarryRequestID(t *testing.T) {
	var logs bytes.Buffer
	_, ts := newServer(t, &logs)
	do(t, ts, "GET", "/id", "", map[string]string{RequestIDHeader: "trace-me"})
	found := false
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "request" && rec["request_id"] == "trace-me" && rec["service"] == "test" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no access log with the request id: %s", logs.String())
	}
}

func TestAccessLogAtInfoLevel(t *testing.T) {
	var logs bytes.Buffer
	s := New(Options{Service: "test", Logger: logx.New("test", "info", &logs)})
	s.Mux.HandleFunc("GET /ok", func(http.ResponseWriter, *http.Request) {})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)

	for range accessSample {
		do(t, ts, "GET", "/ok", "", nil)
	}
	do(t, ts, "GET", "/missing", "", nil)
	do(t, ts, "GET", "/healthz", "", nil)

	var lines []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "request" {
			lines = append(lines, rec)
		}
	}
	// One sampled success, marked with its rate, and the failure; probes never.
	if len(lines) != 2 || lines[0]["path"] != "/ok" || lines[0]["sampled_1_in"] != float64(accessSample) ||
		lines[1]["path"] != "/missing" || lines[1]["status"] != float64(404) || lines[1]["sampled_1_in"] != nil {
		t.Fatalf("access lines at info level: %v", lines)
	}
}

// The server span is named after the route, never the raw path: the ServeMux pattern's path (the
// method is its own attribute), a handler's SetRoute over a catch-all, and the method alone when
// nothing matched, so ids in paths do not make every request a name of its own.
func TestSpanNamedAfterRoute(t *testing.T) {
	rec := httpxtest.RecordSpans(t)
	_, ts := newServer(t, &bytes.Buffer{})
	cases := []struct{ method, path, name, route string }{
		{"GET", "/orders/42", "GET /orders/{id}", "/orders/{id}"},
		{"POST", "/echo", "POST /echo", "/echo"},
		{"GET", "/nowhere/42", "GET", ""},
		{"GET", "/proxy/a/b", "GET /proxy/a", "/proxy/a"},
		{"GET", "/proxy/zzz", "GET", ""},
	}
	for _, c := range cases {
		do(t, ts, c.method, c.path, "{}", nil)
	}
	do(t, ts, "GET", "/healthz", "", nil)
	got := httpxtest.ServerSpans(rec)
	if len(got) != len(cases) {
		t.Fatalf("spans %q, want %d (probes are not traced)", got, len(cases))
	}
	for i, c := range cases {
		if got[i] != [2]string{c.name, c.route} {
			t.Errorf("%s %s: span %q http.route %q, want %q %q", c.method, c.path, got[i][0], got[i][1], c.name, c.route)
		}
	}
}
