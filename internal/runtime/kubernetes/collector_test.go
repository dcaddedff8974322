package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCollectorRelaysExportsToTheAgent runs the collector and the relay
// against a stand-in of the agent's OTLP receiver: every export, traces and
// metrics, arrives once, as it was sent and on its signal's path, and a
// restarted collector is read from its start.
func TestCollectorRelaysExportsToTheAgent(t *testing.T) {
	got := make(chan string, 10)
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.URL.Path + " " + r.Header.Get("Content-Type") + " " + string(b)
	}))
	defer agent.Close()

	col := NewCollector()
	srv := httptest.NewServer(col)
	defer srv.Close()
	post := func(path, body string) {
		resp, err := http.Post(srv.URL+path, "application/x-protobuf", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("export: %s", resp.Status)
		}
	}
	post("/v1/traces", "one")
	fetch := func(ctx context.Context, after int64) (Exports, error) {
		var out Exports
		resp, err := http.Get(srv.URL + "/spans?after=" + strconv.FormatInt(after, 10))
		if err != nil {
			return out, err
		}
		defer resp.Body.Close()
		return out, json.NewDecoder(resp.Body).Decode(&out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go relay(ctx, fetch, strings.TrimPrefix(agent.URL, "http://"))

	want := func(path, body string) {
		t.Helper()
		select {
		case g := <-got:
			if g != path+" application/x-protobuf "+body {
				t.Errorf("agent got %q, want %q on %s", g, body, path)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("agent never got %q", body)
		}
	}
	want("/v1/traces", "one")
	post("/v1/metrics", "two")
	want("/v1/metrics", "two")
	// A restarted collector numbers from 1 again.
	col2 := NewCollector()
	srv.Config.Handler = col2
	var buf bytes.Buffer
	buf.WriteString("three")
	resp, err := http.Post(srv.URL+"/v1/traces", "application/x-protobuf", &buf)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want("/v1/traces", "three")
	select {
	case g := <-got:
		t.Errorf("agent got %q twice or unasked", g)
	case <-time.After(2 * relayEvery):
	}
}
