package client

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/msctl/msctl/services/kit/metrics"
	"github.com/msctl/msctl/services/kit/registry"
)

// measure records a streaming call (Send) as http.client.request.duration when it returns: until
// the answer's headers, retries included, the body's streaming left out (the caller's pace).
func (c *Client) measure(ctx context.Context, method string, start time.Time, resp **http.Response, err *error) {
	if *err != nil {
		metrics.HTTPClient(ctx, method, c.service, 0, errorType(*err), time.Since(start))
		return
	}
	metrics.HTTPClient(ctx, method, c.service, (*resp).StatusCode, "", time.Since(start))
}

// errorType names why a call got no answer, as error.type: few values, so that the agent can
// show an edge's failures by cause.
func errorType(err error) string {
	var (
		be     *bodyError
		tooBig *http.MaxBytesError
	)
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return "breaker_open"
	case errors.Is(err, registry.ErrNoInstances):
		return "no_instance"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &be), errors.As(err, &tooBig):
		return "request_body"
	}
	return "connection"
}
