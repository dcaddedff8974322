// Package client is the outbound HTTP client every service uses for its upstreams: instances come
// from the registry (a Picker), each call has a deadline, idempotent calls are retried a bounded
// number of times with backoff, and a gobreaker circuit breaker per upstream fails fast while the
// upstream is down. Do and Get go through resty; Send streams bodies in both directions over the
// same pooled net/http Transport, so the gateway can proxy through it without holding whole
// requests or answers in memory.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/sony/gobreaker/v2"

	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/logx"
	"github.com/msctl/msctl/services/kit/metrics"
	"github.com/msctl/msctl/services/kit/registry"
)

// Options tune one upstream. Zero values take the defaults noted on each field.
type Options struct {
	// Timeout bounds a whole call, retries included, until the answer's body is closed. Default 3s.
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
	// Transport carries the requests of both resty and Send; default a pooled net/http
	// Transport of its own (pooledTransport). The client adds its own span and trace context
	// around each attempt.
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
// nearly every call dials afresh and leaves a socket in TIME_WAIT. It asks for
// no compression of its own: upstreams are on the same host or network, where
// compressing costs more CPU than it saves; a caller that sets Accept-Encoding
// (the gateway passing on its client's) gets the answer as encoded.
func pooledTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.DisableCompression = true
	return t
}

// Client calls one upstream service.
type Client struct {
	service string
	picker  registry.Picker
	opts    Options
	rt      http.RoundTripper
	rest    *resty.Client
	br      *breaker
	spans   spanNames
}

// New returns a client for service whose instances come from picker. Its breaker is named after
// the service and listed by Breakers.
func New(service string, picker registry.Picker, opts Options) *Client {
	opts = opts.withDefaults()
	hc := &http.Client{
		Transport: opts.Transport,
		// Calls between services never expect a redirect, and a proxy must hand one to its
		// caller as it is rather than follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// Retries stay off in resty: the loop in this package picks a live instance and asks the
	// breaker before every attempt, which resty's own retries cannot.
	rest := resty.NewWithClient(hc).SetLogger(restyLogger{slog.Default().With("upstream", service)})
	c := &Client{
		service: service,
		picker:  picker,
		opts:    opts,
		// Send uses the same transport directly: resty reads whole answers into memory, and the
		// gateway's proxy must stream them. A transport does not follow redirects either.
		rt:    opts.Transport,
		rest:  rest,
		br:    &breaker{timeout: opts.OpenTimeout},
		spans: newSpanNames(service),
	}
	c.br.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        service,
		MaxRequests: opts.HalfOpenRequests,
		Timeout:     opts.OpenTimeout,
		ReadyToTrip: func(cn gobreaker.Counts) bool { return cn.ConsecutiveFailures >= opts.FailureThreshold },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			c.br.onStateChange(to)
		},
		// A caller giving up, or a caller's body that cannot be read, is not the upstream's fault.
		IsExcluded: func(err error) bool {
			var be *bodyError
			return errors.Is(err, context.Canceled) || errors.As(err, &be)
		},
	})
	track(c.br)
	return c
}

// Service is the upstream's name.
func (c *Client) Service() string { return c.service }

// Breaker is the current state of this client's breaker.
func (c *Client) Breaker() BreakerStatus { return c.br.status() }

// Request is one call to the upstream.
type Request struct {
	Method string
	// URL gives the path and query to call on an instance; only Path, RawPath and RawQuery are
	// used, so an incoming request's URL can be passed as it is.
	URL *url.URL
	// Header is sent as it is, plus X-Request-ID from the context and the trace context; the
	// client adds those to this map. Nil is an empty header.
	Header http.Header
	// Body, when not nil, is streamed to the upstream; ContentLength is its length, or -1 when
	// unknown. An idempotent call with retries reads Body into memory first so it can be resent.
	Body          io.Reader
	ContentLength int64
}

// errStatus marks a 5xx answer as a failure for the breaker while keeping the response.
type errStatus struct{ code int }

func (e errStatus) Error() string { return fmt.Sprintf("upstream answered %d", e.code) }

// bodyError is a failure to read the caller's request body: the caller's fault, never retried.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// bodyReader marks errors of the caller's body, so they can be told apart from transport
// failures however the transport reports them.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

// Send performs req against a live instance of the upstream. It returns the last answer even when
// it is a 5xx; the caller must close its body, which also ends the call's deadline. err is an
// *errs.Error when no answer could be had: 503 for no instance, an open breaker or a transport
// failure, 504 for a timeout, 413 or 400 when the request body could not be read.
//
// Send goes through the pooled net/http Transport, not resty: resty reads the whole answer into
// memory, and the gateway's proxy streams request and answer bodies through here.
func (c *Client) Send(ctx context.Context, req *Request) (resp *http.Response, err error) {
	defer c.measure(ctx, req.Method, time.Now(), &resp, &err)
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	var attempts int
	req.Header, attempts = c.prepare(ctx, req.Method, req.Header)
	var replay []byte
	if req.Body != nil && attempts > 1 {
		b, err := io.ReadAll(bodyReader{req.Body})
		if err != nil {
			cancel()
			return nil, c.mapErr(err)
		}
		replay = b
	}
	err = c.retry(ctx, attempts, func(ctx context.Context, addr string, first bool) (int, error) {
		// A retry replaces the 5xx answer of the attempt before.
		drop(resp)
		resp = nil
		att := *req
		if !first {
			// The previous attempt's transport may still hold the header.
			att.Header = req.Header.Clone()
		}
		if replay != nil {
			att.Body, att.ContentLength = bytes.NewReader(replay), int64(len(replay))
		}
		r, err := c.roundTrip(ctx, addr, &att)
		if err != nil {
			return 0, err
		}
		resp = r
		return r.StatusCode, nil
	})
	if err != nil {
		drop(resp)
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// prepare adds the request id to h, which it creates when nil, and says how many attempts the
// call may make.
func (c *Client) prepare(ctx context.Context, method string, h http.Header) (http.Header, int) {
	if h == nil {
		h = http.Header{}
	}
	if id := logx.RequestID(ctx); id != "" && h.Get("X-Request-ID") == "" {
		h.Set("X-Request-ID", id)
	}
	if idempotent(method, h) {
		return h, 1 + c.opts.Retries
	}
	return h, 1
}

// exchange is one attempt against the instance at addr; it reports the answer's status. first is
// false on a retry.
type exchange func(ctx context.Context, addr string, first bool) (int, error)

// retry runs up to attempts exchanges, each on a freshly picked instance and through the breaker,
// with jittered exponential backoff between them, while the failure is one a retry may cure. A 5xx
// answer counts against the breaker but is not an error of the call: the caller gets it. The error
// is an *errs.Error.
func (c *Client) retry(ctx context.Context, attempts int, x exchange) error {
	wait := c.opts.RetryWait
	var err error
	for i := range attempts {
		if i > 0 {
			d := wait/2 + rand.N(wait/2+1)
			select {
			case <-ctx.Done():
				return c.mapErr(ctx.Err())
			case <-time.After(d):
			}
			wait = min(wait*2, c.opts.RetryMaxWait)
		}
		err = c.attempt(ctx, x, i == 0)
		if !retryable(err) {
			break
		}
	}
	var es errStatus
	if err != nil && !errors.As(err, &es) {
		return c.mapErr(err)
	}
	return nil
}

// cancelBody ends the call's deadline when the answer has been read.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// drop discards an answer that will not be handed on, keeping its connection reusable when small.
func drop(resp *http.Response) {
	if resp == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

func (c *Client) attempt(ctx context.Context, x exchange, first bool) error {
	in, err := c.picker.Pick(c.service)
	if err != nil {
		return err
	}
	_, err = c.br.cb.Execute(func() (any, error) {
		status, err := x(ctx, in.Addr, first)
		if err != nil {
			return nil, err
		}
		if status >= 500 {
			return nil, errStatus{status}
		}
		return nil, nil
	})
	return err
}

// roundTrip sends one streaming attempt to the instance at addr inside a client span.
func (c *Client) roundTrip(ctx context.Context, addr string, req *Request) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: addr, Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	ctx, span := c.startSpan(ctx, req.Method, req.Header)
	hr := (&http.Request{
		Method:     req.Method,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     req.Header,
		Host:       addr,
	}).WithContext(ctx)
	if req.Body != nil {
		hr.Body = io.NopCloser(bodyReader{req.Body})
		hr.ContentLength = req.ContentLength
		if hr.ContentLength == 0 {
			hr.ContentLength = -1
		}
	}
	resp, err := c.rt.RoundTrip(hr)
	if err != nil {
		endSpan(span, addr, u.Path, 0, err)
		return nil, err
	}
	endSpan(span, addr, u.Path, resp.StatusCode, nil)
	return resp, nil
}

func retryable(err error) bool {
	var be *bodyError
	switch {
	case err == nil:
		return false
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &be):
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
	var (
		be     *bodyError
		tooBig *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return errs.TooLarge("body_too_large", fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)).Wrap(err)
	case errors.As(err, &be):
		return errs.BadRequest("bad_body", "could not read the request body").Wrap(err)
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

// Get fetches path (with its query) and returns the status and body of whatever answered, even a
// 5xx; err is an *errs.Error only when nothing answered. header may be nil.
func (c *Client) Get(ctx context.Context, path string, header http.Header) (int, []byte, error) {
	return c.call(ctx, http.MethodGet, path, header, nil)
}

// call makes a buffered request through resty: the whole answer is read before it returns, and the
// call's deadline ends with it.
func (c *Client) call(ctx context.Context, method, path string, header http.Header, body []byte) (int, []byte, error) {
	if _, err := url.ParseRequestURI(path); err != nil {
		return 0, nil, errs.Internal("internal", "internal error").Wrap(fmt.Errorf("call %s: bad path %q: %w", c.service, path, err))
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	header, attempts := c.prepare(ctx, method, header)
	var resp *resty.Response
	err := c.retry(ctx, attempts, func(ctx context.Context, addr string, _ bool) (int, error) {
		// A fresh header per attempt: the span's trace context differs between attempts.
		h := header.Clone()
		ctx, span := c.startSpan(ctx, method, h)
		r := c.rest.R().SetContext(ctx)
		r.Header = h
		if body != nil {
			r.SetBody(body)
		}
		var err error
		resp, err = r.Execute(method, "http://"+addr+path)
		if err != nil {
			endSpan(span, addr, path, 0, err)
			return 0, err
		}
		endSpan(span, addr, path, resp.StatusCode(), nil)
		return resp.StatusCode(), nil
	})
	if err != nil {
		metrics.HTTPClient(ctx, method, c.service, 0, errorType(err), time.Since(start))
		return 0, nil, err
	}
	metrics.HTTPClient(ctx, method, c.service, resp.StatusCode(), "", time.Since(start))
	return resp.StatusCode(), resp.Body(), nil
}

// restyLogger sends resty's own messages to slog, as every log line of a service goes.
type restyLogger struct{ l *slog.Logger }

var _ resty.Logger = restyLogger{}

func (r restyLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r restyLogger) Warnf(format string, v ...any)  { r.l.Warn(fmt.Sprintf(format, v...)) }
func (r restyLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }

// Do sends a JSON request (in may be nil) and decodes a 2xx JSON answer into out (may be nil).
// A non-2xx answer becomes an *errs.Error with the upstream's status, code and message.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	h := http.Header{"Accept": {"application/json"}}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return errs.Internal("internal", "internal error").Wrap(fmt.Errorf("encode %s %s: %w", method, path, err))
		}
		h.Set("Content-Type", "application/json")
		body = b
	}
	status, answer, err := c.call(ctx, method, path, h, body)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return upstreamError(c.service, status, answer)
	}
	if out == nil || len(answer) == 0 {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return errs.New(http.StatusBadGateway, "bad_upstream_response", c.service+" sent an unreadable answer").
			Wrap(fmt.Errorf("decode %s %s: %w", method, path, err))
	}
	return nil
}

func upstreamError(service string, status int, answer []byte) *errs.Error {
	var body errs.Body
	if err := json.Unmarshal(answer, &body); err == nil && body.Error.Code != "" {
		return errs.New(status, body.Error.Code, body.Error.Message)
	}
	return errs.New(status, "upstream_error", fmt.Sprintf("%s answered %d", service, status))
}
