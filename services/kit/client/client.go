// Package client is the outbound HTTP client every service uses for its upstreams: instances come
// from the registry (a Picker), each call has a deadline, idempotent calls are retried a bounded
// number of times with backoff, and a gobreaker circuit breaker per upstream fails fast while the
// upstream is down.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/logx"
	"github.com/msctl/msctl/services/kit/registry"
)

// Options tune one upstream. Zero values take the defaults noted on each field.
type Options struct {
	// Timeout bounds a whole call, retries included. Default 3s.
	Timeout time.Duration
	// Retries is the number of extra attempts for idempotent calls (GET, HEAD, OPTIONS, PUT,
	// DELETE, or any request with an Idempotency-Key header). Default 2; negative disables.
	Retries int
	// RetryWait is the first backoff, doubled per attempt up to RetryMaxWait, with jitter.
	// Defaults 50ms and 500ms.
	RetryWait    time.Duration
	RetryMaxWait time.Duration
	// FailureThreshold consecutive failures open the breaker. Default 5.
	FailureThreshold uint32
	// OpenTimeout is how long the breaker stays open before letting a probe through. Default 10s.
	OpenTimeout time.Duration
	// HalfOpenRequests probes are allowed while half-open. Default 1.
	HalfOpenRequests uint32
	// Transport carries the requests; default a pooled transport of its own (pooledTransport).
	// It is wrapped by otelhttp.
	Transport http.RoundTripper
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	switch {
	case o.Retries == 0:
		o.Retries = 2
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.RetryWait <= 0 {
		o.RetryWait = 50 * time.Millisecond
	}
	if o.RetryMaxWait <= 0 {
		o.RetryMaxWait = 500 * time.Millisecond
	}
	if o.FailureThreshold == 0 {
		o.FailureThreshold = 5
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 10 * time.Second
	}
	if o.HalfOpenRequests == 0 {
		o.HalfOpenRequests = 1
	}
	if o.Transport == nil {
		o.Transport = pooledTransport()
	}
	return o
}

// pooledTransport keeps enough idle connections per upstream instance for the
// concurrency a service sees. http.DefaultTransport keeps two, so under load
// nearly every call dials afresh and leaves a socket in TIME_WAIT.
func pooledTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}

// Client calls one upstream service.
type Client struct {
	service string
	picker  registry.Picker
	opts    Options
	http    *resty.Client
	br      *breaker
}

// New returns a client for service whose instances come from picker. Its breaker is named after
// the service and listed by Breakers.
func New(service string, picker registry.Picker, opts Options) *Client {
	opts = opts.withDefaults()
	hc := &http.Client{
		Transport: otelhttp.NewTransport(opts.Transport),
		// Calls between services never expect a redirect, and the gateway must
		// hand one to its caller as it is rather than follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c := &Client{
		service: service,
		picker:  picker,
		opts:    opts,
		http:    resty.NewWithClient(hc),
		br:      &breaker{timeout: opts.OpenTimeout},
	}
	c.br.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        service,
		MaxRequests: opts.HalfOpenRequests,
		Timeout:     opts.OpenTimeout,
		ReadyToTrip: func(cn gobreaker.Counts) bool { return cn.ConsecutiveFailures >= opts.FailureThreshold },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			c.br.onStateChange(to)
		},
		// A caller giving up is not the upstream's fault.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	})
	track(c.br)
	return c
}

// Service is the upstream's name.
func (c *Client) Service() string { return c.service }

// Breaker is the current state of this client's breaker.
func (c *Client) Breaker() BreakerStatus { return c.br.status() }

// R starts a request bound to ctx; send it with Send.
func (c *Client) R(ctx context.Context) *resty.Request {
	return c.http.R().SetContext(ctx)
}

// errStatus marks a 5xx answer as a failure for the breaker while keeping the response.
type errStatus struct{ code int }

func (e errStatus) Error() string { return fmt.Sprintf("upstream answered %d", e.code) }

// Send performs req against a live instance of the upstream at path (e.g. "/internal/users/1").
// It returns the last response when one arrived, even a 5xx; err is an *errs.Error (503 or 504)
// when no response could be had: no instance, open breaker, transport failure or timeout.
func (c *Client) Send(req *resty.Request, method, path string) (*resty.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), c.opts.Timeout)
	defer cancel()
	req.SetContext(ctx)
	if id := logx.RequestID(ctx); id != "" && req.Header.Get("X-Request-ID") == "" {
		req.SetHeader("X-Request-ID", id)
	}
	attempts := 1
	if idempotent(method, req.Header) {
		attempts += c.opts.Retries
	}
	wait := c.opts.RetryWait
	var (
		resp *resty.Response
		err  error
	)
	for i := range attempts {
		if i > 0 {
			d := wait/2 + rand.N(wait/2+1)
			select {
			case <-ctx.Done():
				return resp, c.mapErr(ctx.Err())
			case <-time.After(d):
			}
			wait = min(wait*2, c.opts.RetryMaxWait)
		}
		resp, err = c.attempt(req, method, path)
		if !retryable(resp, err) {
			break
		}
	}
	if err != nil {
		var es errStatus
		if errors.As(err, &es) {
			return resp, nil
		}
		return resp, c.mapErr(err)
	}
	return resp, nil
}

func (c *Client) attempt(req *resty.Request, method, path string) (*resty.Response, error) {
	in, err := c.picker.Pick(c.service)
	if err != nil {
		return nil, err
	}
	var resp *resty.Response
	_, err = c.br.cb.Execute(func() (any, error) {
		r, err := req.Execute(method, "http://"+in.Addr+path)
		if err != nil {
			return nil, err
		}
		resp = r
		if r.StatusCode() >= 500 {
			return nil, errStatus{r.StatusCode()}
		}
		return nil, nil
	})
	return resp, err
}

func retryable(resp *resty.Response, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	var es errStatus
	if errors.As(err, &es) {
		return es.code == http.StatusBadGateway || es.code == http.StatusServiceUnavailable || es.code == http.StatusGatewayTimeout
	}
	return true
}

func idempotent(method string, h http.Header) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return h.Get("Idempotency-Key") != ""
}

func (c *Client) mapErr(err error) *errs.Error {
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return errs.Unavailable("upstream_unavailable", c.service+" is unavailable (circuit breaker open)").Wrap(err)
	case errors.Is(err, registry.ErrNoInstances):
		return errs.Unavailable("upstream_unavailable", "no live instance of "+c.service).Wrap(err)
	case errors.Is(err, context.DeadlineExceeded):
		return errs.New(http.StatusGatewayTimeout, "upstream_timeout", c.service+" did not answer in time").Wrap(err)
	case errors.Is(err, context.Canceled):
		return errs.Unavailable("canceled", "request canceled").Wrap(err)
	}
	return errs.Unavailable("upstream_unavailable", c.service+" is unreachable").Wrap(err)
}

// Do sends a JSON request (in may be nil) and decodes a 2xx JSON answer into out (may be nil).
// A non-2xx answer becomes an *errs.Error with the upstream's status, code and message.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	req := c.R(ctx).SetHeader("Accept", "application/json")
	if in != nil {
		req.SetHeader("Content-Type", "application/json").SetBody(in)
	}
	resp, err := c.Send(req, method, path)
	if err != nil {
		return err
	}
	if resp.StatusCode() < 200 || resp.StatusCode() > 299 {
		return upstreamError(c.service, resp)
	}
	if out == nil || len(resp.Body()) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.Body(), out); err != nil {
		return errs.New(http.StatusBadGateway, "bad_upstream_response", c.service+" sent an unreadable answer").
			Wrap(fmt.Errorf("decode %s %s: %w", method, path, err))
	}
	return nil
}

func upstreamError(service string, resp *resty.Response) *errs.Error {
	var body errs.Body
	if err := json.Unmarshal(resp.Body(), &body); err == nil && body.Error.Code != "" {
		return errs.New(resp.StatusCode(), body.Error.Code, body.Error.Message)
	}
	return errs.New(resp.StatusCode(), "upstream_error", fmt.Sprintf("%s answered %d", service, resp.StatusCode()))
}
