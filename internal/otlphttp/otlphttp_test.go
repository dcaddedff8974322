package otlphttp

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.Bytes()
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     []byte
		encoding string
		want     string // body read; "" when refused
		code     int    // the answer when refused
	}{
		{"plain", []byte("spans"), "", "spans", 0},
		{"gzip", gzipped("spans"), "gzip", "spans", 0},
		{"at the limit", []byte(strings.Repeat("x", 64)), "", strings.Repeat("x", 64), 0},
		{"bad gzip", []byte("not gzip"), "gzip", "", http.StatusBadRequest},
		{"over the limit", []byte(strings.Repeat("x", 65)), "", "", http.StatusRequestEntityTooLarge},
		{"over the limit once gunzipped", gzipped(strings.Repeat("x", 65)), "gzip", "", http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(tc.body))
			if tc.encoding != "" {
				r.Header.Set("Content-Encoding", tc.encoding)
			}
			w := httptest.NewRecorder()
			data, ok := ReadBody(w, r, 64)
			if tc.want == "" {
				if ok || w.Code != tc.code {
					t.Fatalf("read %q (ok %v), answered %d; want refused with %d", data, ok, w.Code, tc.code)
				}
				return
			}
			if !ok || string(data) != tc.want {
				t.Fatalf("read %q (ok %v, answered %d), want %q", data, ok, w.Code, tc.want)
			}
		})
	}
}
