// Package otlphttp reads OTLP/HTTP export requests, for the two receivers
// msctl has: the agent's and the in-cluster collector of the kubernetes
// runtime, which relays what services send to the agent.
package otlphttp

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ReadBody reads an export request's body, at most limit bytes before and
// after gunzipping it (exporters may send Content-Encoding: gzip). A larger
// body is refused whole (413), never cut short: a truncated export would
// be relayed or decoded as if it were complete. On a bad body it answers
// itself and returns ok false.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) (data []byte, ok bool) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip body: "+err.Error(), http.StatusBadRequest)
			return nil, false
		}
		defer zr.Close()
		body = io.LimitReader(zr, limit+1)
	}
	data, err := io.ReadAll(body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || int64(len(data)) > limit:
		http.Error(w, fmt.Sprintf("export request over %d bytes", limit), http.StatusRequestEntityTooLarge)
		return nil, false
	case err != nil:
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return data, true
}
