package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countedServer is a real upstream that counts the connections opened to it.
func countedServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, &conns
}

func request(t *testing.T, ctx context.Context, ts *httptest.Server, method, path string, body io.Reader, length int64) *http.Request {
	t.Helper()
	u, err := url.Parse(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	r := (&http.Request{Method: method, URL: u, Header: http.Header{}, Host: u.Host, ContentLength: length}).WithContext(ctx)
	if body != nil {
		r.Body = io.NopCloser(body)
	}
	return r
}

func roundTrip(t *testing.T, tr *Transport, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func TestTransportExchanges(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	ts, conns := countedServer(t, func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/chunked":
			_, _ = io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "b")
		case "/big":
			_, _ = io.WriteString(w, big)
		case "/early":
			w.Header().Set("Link", "</style.css>")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "late")
		default:
			w.Header().Set("X-Length", r.Header.Get("Content-Length"))
			w.Header().Set("X-Chunked", strings.Join(r.TransferEncoding, ","))
			_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+string(in))
		}
	})
	tr := NewTransport(4)
	ctx := context.Background()
	tests := []struct {
		name, method, path string
		body               string
		length             int64
		wantStatus         int
		wantBody           string
		check              func(t *testing.T, resp *http.Response)
	}{
		{name: "get with query", method: "GET", path: "/a?b=c&d=%2F", wantStatus: 200, wantBody: "GET /a?b=c&d=%2F "},
		{name: "post known length", method: "POST", path: "/p", body: "hello", length: 5, wantStatus: 200, wantBody: "POST /p hello",
			check: func(t *testing.T, resp *http.Response) {
				if resp.Header.Get("X-Length") != "5" {
					t.Errorf("upstream saw Content-Length %q", resp.Header.Get("X-Length"))
				}
			}},
		{name: "post unknown length", method: "POST", path: "/p", body: "streamed", length: -1, wantStatus: 200, wantBody: "POST /p streamed",
			check: func(t *testing.T, resp *http.Response) {
				if resp.Header.Get("X-Chunked") != "chunked" {
					t.Errorf("upstream saw transfer encoding %q", resp.Header.Get("X-Chunked"))
				}
			}},
		{name: "head", method: "HEAD", path: "/h", wantStatus: 200, wantBody: ""},
		{name: "no content", method: "GET", path: "/empty", wantStatus: 204, wantBody: ""},
		{name: "chunked answer", method: "GET", path: "/chunked", wantStatus: 200, wantBody: "ab"},
		{name: "large answer", method: "GET", path: "/big", wantStatus: 200, wantBody: big},
		{name: "informational answer skipped", method: "GET", path: "/early", wantStatus: 200, wantBody: "late"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, got := roundTrip(t, tr, request(t, ctx, ts, tt.method, tt.path, body, tt.length))
			if resp.StatusCode != tt.wantStatus || got != tt.wantBody {
				t.Fatalf("status %d body %.40q, want %d %.40q", resp.StatusCode, got, tt.wantStatus, tt.wantBody)
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
		})
	}
	// Every exchange read its answer to the end, so one connection carried them all.
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for sequential exchanges, want 1", n)
	}
}

func TestTransportConnectionReuse(t *testing.T) {
	ts, conns := countedServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("y", 64<<10))
	})
	tr := NewTransport(4)
	ctx := context.Background()

	// An answer closed before its end takes its connection with it.
	resp, err := tr.RoundTrip(request(t, ctx, ts, "GET", "/", nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	roundTrip(t, tr, request(t, ctx, ts, "GET", "/", nil, 0))
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after a half-read answer, want 2", n)
	}

	// A kept connection the upstream closed while idle is replaced without an error.
	ts.CloseClientConnections()
	if resp, _ := roundTrip(t, tr, request(t, ctx, ts, "GET", "/", nil, 0)); resp.StatusCode != 200 {
		t.Fatalf("after the upstream dropped idle connections: %d", resp.StatusCode)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections after the upstream dropped one, want 3", n)
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestTransportFailures(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ts, _ := countedServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	tr := NewTransport(4)
	bodyErr := errors.New("client went away")
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		path    string
		body    io.Reader
		wantErr error
	}{
		{name: "deadline", path: "/slow", wantErr: context.DeadlineExceeded,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
		{name: "cancel", path: "/slow", wantErr: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			}},
		{name: "body read error", path: "/p", body: io.MultiReader(bytes.NewReader([]byte("part")), failingReader{bodyErr}), wantErr: bodyErr,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			method := "GET"
			if tt.body != nil {
				method = "POST"
			}
			resp, err := tr.RoundTrip(request(t, ctx, ts, method, tt.path, tt.body, -1))
			if err == nil {
				resp.Body.Close()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
		})
	}
	// The transport still works after all that.
	roundTrip(t, tr, request(t, context.Background(), ts, "GET", "/", nil, 0))
}
