// Package summary builds GET /api/v1/orders/{id}/summary: the order plus its
// payment, its owner and its notifications, fetched concurrently under one
// deadline. Only the order is essential; any other part that is down, slow or
// behind an open breaker is left null and named in "degraded".
package summary

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/msctl/msctl/services/gateway/upstream"
	"github.com/msctl/msctl/services/kit/errs"
)

// Fetcher gets a path from a service as a user. It returns whatever answered
// (status and body); err means nothing answered in time.
type Fetcher interface {
	Get(ctx context.Context, service, path, authorization string) (status int, body []byte, err error)
}

var _ Fetcher = (*upstream.Pool)(nil)

// Part names, as they appear in "degraded".
const (
	PartPayment       = "payment"
	PartUser          = "user"
	PartNotifications = "notifications"
)

// Services are the upstreams a summary reads.
var Services = []string{"orders", "payments", "users", "notifications"}

// Summary is the response body. Parts are passed through as the services sent
// them, so fields the gateway does not know about survive.
type Summary struct {
	Order         json.RawMessage `json:"order"`
	Payment       json.RawMessage `json:"payment"`
	User          json.RawMessage `json:"user"`
	Notifications json.RawMessage `json:"notifications"`
	Degraded      []string        `json:"degraded"`
}

// Aggregator builds summaries.
type Aggregator struct {
	fetch   Fetcher
	timeout time.Duration
	log     *slog.Logger
}

// New returns an Aggregator whose summaries take at most timeout.
func New(f Fetcher, timeout time.Duration, log *slog.Logger) *Aggregator {
	return &Aggregator{fetch: f, timeout: timeout, log: log}
}

type part struct {
	status int
	body   []byte
	err    error
}

// Build returns the summary of orderID as seen by userID, whose bearer token
// authorization goes along to the parts that act for the user, or an
// *errs.Error: 404 when orders does not show the order to this user, 503
// when orders cannot answer.
func (a *Aggregator) Build(ctx context.Context, orderID, userID, authorization string) (*Summary, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()

	id := url.PathEscape(orderID)
	// Every part starts at once. Payment and notifications are fetched before
	// orders has confirmed ownership, but they are only returned if it does.
	calls := []struct{ service, path string }{
		{"orders", "/api/v1/orders/" + id},
		{"payments", "/internal/payments?order_id=" + url.QueryEscape(orderID)},
		{"users", "/internal/users/" + url.PathEscape(userID)},
		{"notifications", "/api/v1/notifications?order_id=" + url.QueryEscape(orderID)},
	}
	parts := make([]part, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			st, body, err := a.fetch.Get(ctx, c.service, c.path, authorization)
			parts[i] = part{st, body, err}
		})
	}
	wg.Wait()

	order := parts[0]
	switch {
	case order.err != nil:
		a.log.WarnContext(ctx, "summary: orders unavailable", "order_id", orderID, "err", order.err)
		return nil, errs.Unavailable("upstream_unavailable", "orders is unavailable")
	case order.status == http.StatusNotFound:
		return nil, errs.NotFound("not_found", "order not found")
	case order.status >= 400 && order.status < 500:
		return nil, passThrough(order)
	case order.status != http.StatusOK || !isJSON(order.body, '{'):
		a.log.WarnContext(ctx, "summary: bad answer from orders", "order_id", orderID, "status", order.status)
		return nil, errs.Unavailable("upstream_unavailable", "orders is unavailable")
	}

	s := &Summary{Order: order.body, Degraded: []string{}}
	s.Payment = a.optional(ctx, &s.Degraded, PartPayment, parts[1], '{', true)
	s.User = a.optional(ctx, &s.Degraded, PartUser, parts[2], '{', false)
	s.Notifications = a.optional(ctx, &s.Degraded, PartNotifications, parts[3], '[', false)
	return s, nil
}

// optional returns a part's body, or nil after recording it as degraded.
// absentOK says a 404 means "does not exist yet" (no payment for a fresh
// order) rather than a failure.
func (a *Aggregator) optional(ctx context.Context, degraded *[]string, name string, p part, opening byte, absentOK bool) json.RawMessage {
	switch {
	case p.err == nil && p.status == http.StatusOK && isJSON(p.body, opening):
		return p.body
	case p.err == nil && p.status == http.StatusNotFound && absentOK:
		return nil
	}
	a.log.WarnContext(ctx, "summary: part degraded", "part", name, "status", p.status, "err", p.err)
	*degraded = append(*degraded, name)
	return nil
}

// isJSON reports whether body is one valid JSON value starting with opening
// ('{' object or '[' array), so the summary never embeds broken JSON.
func isJSON(body []byte, opening byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == opening && json.Valid(b)
}

// passThrough keeps an orders 4xx (e.g. a malformed id) with its code.
func passThrough(p part) *errs.Error {
	var body errs.Body
	if json.Unmarshal(p.body, &body) == nil && body.Error.Code != "" {
		return errs.New(p.status, body.Error.Code, body.Error.Message)
	}
	return errs.New(p.status, "bad_request", "orders rejected the request")
}
