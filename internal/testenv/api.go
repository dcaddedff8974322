package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// API calls a JSON HTTP API as a client program would: request bodies are
// JSON, a token travels as a bearer. Every end-to-end and system test talks
// to the shop through one, so they all send the same requests. T is
// exported so that a subtest can take over an API made by its parent.
type API struct {
	T    testing.TB
	Base string // e.g. http://127.0.0.1:8080
	// Client is the HTTP client; nil means one with a 10s timeout.
	Client *http.Client
}

// Response is one answer, kept whole: tests assert on its status, headers
// and body.
type Response struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Call sends one request: body (unless nil) as JSON, token (unless empty)
// as "Authorization: Bearer", then hdr, which may override both. Only a
// request that gets no answer fails the test; any status is the caller's
// to judge.
func (a *API) Call(method, path, token string, hdr http.Header, body any) Response {
	a.T.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			a.T.Fatalf("%s %s: encode body: %v", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.Base+path, rd)
	if err != nil {
		a.T.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, vs := range hdr {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	client := a.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		a.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.T.Fatalf("%s %s: read: %v", method, path, err)
	}
	return Response{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// Do is Call without extra headers that decodes a 2xx answer into out
// (unless out is nil) and returns the status.
func (a *API) Do(method, path, token string, body, out any) int {
	a.T.Helper()
	return a.Call(method, path, token, nil, body).Decode(a.T, out)
}

// Decode unmarshals a 2xx answer into out, unless out is nil, failing the
// test when it is not the JSON expected; it returns the status, so an
// answer that is not 2xx is left for the caller to judge.
func (r Response) Decode(t testing.TB, out any) int {
	t.Helper()
	if out != nil && r.Status/100 == 2 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", r.Method, r.Path, r.Body, err)
		}
	}
	return r.Status
}
