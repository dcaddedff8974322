// Package upstream is how the gateway talks to services: one kit client per
// upstream (registry-resolved, timeout, bounded retry, one circuit breaker),
// shared by the reverse proxy, the summary aggregation and the JWKS fetch, so
// each upstream has exactly one breaker and it shows in /debug/breakers.
package upstream

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"sort"
	"strings"

	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/logx"
	"github.com/msctl/msctl/services/kit/registry"
)

// Pool holds the clients of every upstream the gateway knows.
type Pool struct {
	clients map[string]*client.Client
}

// NewPool builds one client per service. Each has kit/client's pooled net/http Transport unless
// opts names one: the proxy streams through it, and Get and the JWKS fetch go through resty over it.
func NewPool(picker registry.Picker, services []string, opts client.Options) *Pool {
	p := &Pool{clients: make(map[string]*client.Client, len(services))}
	for _, s := range services {
		if _, ok := p.clients[s]; !ok {
			p.clients[s] = client.New(s, picker, opts)
		}
	}
	return p
}

// Services lists the upstreams, sorted.
func (p *Pool) Services() []string {
	out := make([]string, 0, len(p.clients))
	for s := range p.clients {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (p *Pool) client(service string) (*client.Client, error) {
	c, ok := p.clients[service]
	if !ok {
		// A programming error in the wiring, not a client error.
		return nil, errs.Internal("internal", "internal error").Wrap(fmt.Errorf("no client for upstream %q", service))
	}
	return c, nil
}

// Forward sends in to service, unchanged in method, path and query, streaming its body. Hop-by-hop
// headers are dropped; the bearer token, the request id and trace context travel along (the
// service verifies the token itself and trusts no header that only names a user). The caller must close the answer's body. The error
// is an *errs.Error: 503 for an open breaker, no instance or an unreachable upstream, 504 for a
// timeout, 413 for a body over the limit.
func (p *Pool) Forward(in *http.Request, service string) (*http.Response, error) {
	c, err := p.client(service)
	if err != nil {
		return nil, err
	}
	req := &client.Request{Method: in.Method, URL: in.URL, Header: forwardHeaders(in)}
	// An incoming request states 0 only when it has no body; -1 is a body of unknown length.
	if in.ContentLength != 0 {
		req.Body, req.ContentLength = in.Body, in.ContentLength
	}
	return c.Send(in.Context(), req)
}

// CopyHeader adds the end-to-end headers of an upstream answer to dst. The gateway's own request
// id and length are authoritative on the way out, so the upstream's are dropped.
func CopyHeader(dst, src http.Header) {
	connection := src["Connection"]
	for k, v := range src {
		if isHopByHop(k) || k == "Content-Length" || k == "X-Request-Id" || listed(connection, k) {
			continue
		}
		dst[k] = v
	}
}

// Get fetches path from service with the caller's Authorization header
// (may be empty) and returns the status and body of whatever answered; err
// is set only when nothing answered.
func (p *Pool) Get(ctx context.Context, service, path, authorization string) (int, []byte, error) {
	c, err := p.client(service)
	if err != nil {
		return 0, nil, err
	}
	h := http.Header{"Accept": {"application/json"}}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	return c.Get(ctx, path, h)
}

// isHopByHop reports the RFC 9110 §7.6.1 connection-specific headers, plus the Proxy-* ones,
// that a proxy must not forward. k is in canonical form, as http.Header keys are.
func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// listed reports whether the Connection header values name k as hop-by-hop too.
func listed(connection []string, k string) bool {
	for _, v := range connection {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" && textproto.CanonicalMIMEHeaderKey(name) == k {
				return true
			}
		}
	}
	return false
}

// forwardHeaders builds the upstream request's header from in's in one pass, sharing the value
// slices, which nothing downstream modifies. Accept-Encoding passes through: when it is set the
// transport leaves the answer as encoded for the client instead of decoding it.
func forwardHeaders(in *http.Request) http.Header {
	connection := in.Header["Connection"]
	h := make(http.Header, len(in.Header)+3)
	for k, v := range in.Header {
		// The length is the transport's to state.
		if isHopByHop(k) || k == "Content-Length" || listed(connection, k) {
			continue
		}
		h[k] = v
	}
	if id := logx.RequestID(in.Context()); id != "" {
		h["X-Request-Id"] = []string{id}
	}
	if ip := ClientIP(in); ip != "" {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h["X-Forwarded-For"] = []string{ip}
	}
	return h
}

// ClientIP is the peer address of r. The gateway is the public edge, so it
// trusts no forwarding header for this.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
