// Package otlpexport forwards the OTLP/HTTP export requests the agent
// receives to an external OTLP endpoint (Jaeger, Tempo, a collector), as
// they came, for any signal (/v1/traces, /v1/metrics). The receiver hands
// a request over and returns: a bounded queue (oldest dropped when full,
// counted) and one sender that retries with backoff stand between it and
// an endpoint that is slow or gone.
package otlpexport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// Bounds of what waits to be sent: a dead endpoint costs at most this much
// memory.
const (
	maxQueued      = 512
	maxQueuedBytes = 32 << 20
)

// Retries of one request: connection errors, 429 and 5xx are retried with a
// backoff doubling from minBackoff to maxBackoff, at most maxAttempts times.
const (
	maxAttempts = 5
	minBackoff  = 200 * time.Millisecond
	maxBackoff  = 5 * time.Second
	sendTimeout = 10 * time.Second
	// drainTimeout is how long Close lets the sender deliver what is
	// queued: a service's last spans arrive as the workspace stops.
	drainTimeout = 2 * time.Second
)

// CheckURL validates an export endpoint: http or https, a host, no query or
// fragment. The signal path (/v1/traces) is appended to its path.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the OTLP/HTTP endpoint must be an http:// or https:// URL, e.g. http://localhost:4318", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host: write it like http://localhost:4318", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: remove the query or fragment; msctl appends /v1/traces or /v1/metrics to the URL's path", raw)
	}
	return nil
}

// request is one export request waiting to be sent.
type request struct {
	signal, contentType string
	body                []byte
}

// Exporter forwards export requests to one endpoint.
type Exporter struct {
	base   string
	client *http.Client

	mu      sync.Mutex
	queue   []request
	bytes   int
	lastErr string

	sent, dropped atomic.Uint64

	wake     chan struct{}
	draining chan struct{} // closed by Close: stop once the queue is empty
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
}

// New starts an exporter to endpoint (see CheckURL).
func New(endpoint string) (*Exporter, error) {
	if err := CheckURL(endpoint); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exporter{
		base:   strings.TrimSuffix(endpoint, "/"),
		client: &http.Client{Timeout: sendTimeout},
		wake:   make(chan struct{}, 1), draining: make(chan struct{}),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	go e.run()
	return e, nil
}

// Forward queues one received export request of signal ("traces",
// "metrics") to be sent as it came; it never waits. body must not change
// afterwards. A nil exporter (no endpoint set) forwards nothing, so that
// receivers call it unconditionally.
func (e *Exporter) Forward(signal, contentType string, body []byte) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.queue = append(e.queue, request{signal: signal, contentType: contentType, body: body})
	e.bytes += len(body)
	for len(e.queue) > maxQueued || e.bytes > maxQueuedBytes {
		e.bytes -= len(e.queue[0].body)
		e.queue[0] = request{}
		e.queue = e.queue[1:]
		e.dropped.Add(1)
	}
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Status says where the exporter sends and how it fares; nil for a nil
// exporter.
func (e *Exporter) Status() *state.Export {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return &state.Export{URL: e.base, Sent: e.sent.Load(), Dropped: e.dropped.Load(), Queued: len(e.queue), LastError: e.lastErr}
}

// Close lets the sender deliver what is queued for up to drainTimeout,
// then stops it; what is left is not sent.
func (e *Exporter) Close() {
	if e == nil {
		return
	}
	close(e.draining)
	select {
	case <-e.done:
	case <-time.After(drainTimeout):
	}
	e.cancel()
	<-e.done
}

func (e *Exporter) run() {
	defer close(e.done)
	for {
		r, ok := e.next()
		if !ok {
			select {
			case <-e.wake:
				continue
			case <-e.draining:
				return
			case <-e.ctx.Done():
				return
			}
		}
		e.send(r)
		if e.ctx.Err() != nil {
			return
		}
	}
}

func (e *Exporter) next() (request, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.queue) == 0 {
		return request{}, false
	}
	r := e.queue[0]
	e.queue[0] = request{}
	e.queue = e.queue[1:]
	e.bytes -= len(r.body)
	return r, true
}

// send delivers one request, retrying what may pass later; a request that
// never passes counts as dropped.
func (e *Exporter) send(r request) {
	wait := minBackoff
	for attempt := 1; ; attempt++ {
		err := e.post(r)
		if err == nil {
			e.sent.Add(1)
			return
		}
		e.mu.Lock()
		e.lastErr = time.Now().UTC().Format(time.RFC3339) + " " + err.Error()
		e.mu.Unlock()
		var perm *permanentError
		if errors.As(err, &perm) || attempt == maxAttempts {
			e.dropped.Add(1)
			return
		}
		select {
		case <-time.After(wait):
		case <-e.ctx.Done():
			return
		}
		wait = min(2*wait, maxBackoff)
	}
}

// permanentError is an answer a retry would get again (4xx but 429).
type permanentError struct{ msg string }

func (p *permanentError) Error() string { return p.msg }

func (e *Exporter) post(r request) error {
	target := e.base + "/v1/" + r.signal
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, target, bytes.NewReader(r.body))
	if err != nil {
		return &permanentError{msg: err.Error()}
	}
	req.Header.Set("Content-Type", r.contentType)
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", target, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("POST %s: %s", target, resp.Status)
	default:
		return &permanentError{msg: fmt.Sprintf("POST %s: %s: %s", target, resp.Status, strings.TrimSpace(string(msg)))}
	}
}
