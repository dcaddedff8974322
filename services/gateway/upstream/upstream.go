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

// UserIDHeader carries the verified user id to services, which trust it.
const UserIDHeader = "X-User-ID"

// Pool holds the clients of every upstream the gateway knows.
type Pool struct {
	clients map[string]*client.Client
}

// NewPool builds one client per service.
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

// Response is a complete upstream answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Forward sends in (with its already-read body) to service, unchanged in method,
// path and query. Hop-by-hop headers and any client-supplied X-User-ID are
// dropped; userID (when set) becomes X-User-ID; the request id and trace
// context travel along. The error is an *errs.Error: 503 for an open breaker,
// no instance or an unreachable upstream, 504 for a timeout.
func (p *Pool) Forward(in *http.Request, service string, body []byte, userID string) (*Response, error) {
	c, err := p.client(service)
	if err != nil {
		return nil, err
	}
	req := c.R(in.Context())
	req.Header = forwardHeaders(in, userID)
	if len(body) > 0 {
		req.SetBody(body)
	}
	resp, err := c.Send(req, in.Method, in.URL.RequestURI())
	if err != nil {
		return nil, err
	}
	h := resp.Header().Clone()
	removeHopByHop(h)
	// The gateway's own request id and length are authoritative on the way out.
	h.Del("Content-Length")
	h.Del("X-Request-ID")
	return &Response{Status: resp.StatusCode(), Header: h, Body: resp.Body()}, nil
}

// Get fetches path from service as userID (may be empty) and returns the status
// and body of whatever answered; err is set only when nothing answered.
func (p *Pool) Get(ctx context.Context, service, path, userID string) (int, []byte, error) {
	c, err := p.client(service)
	if err != nil {
		return 0, nil, err
	}
	req := c.R(ctx).SetHeader("Accept", "application/json")
	if userID != "" {
		req.SetHeader(UserIDHeader, userID)
	}
	resp, err := c.Send(req, http.MethodGet, path)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), resp.Body(), nil
}

// JWKS fetches the token issuer's key set through the issuer's client.
type JWKS struct {
	Pool    *Pool
	Service string
}

// FetchJWKS implements auth.Fetcher.
func (j JWKS) FetchJWKS(ctx context.Context) ([]byte, error) {
	status, body, err := j.Pool.Get(ctx, j.Service, "/.well-known/jwks.json", "")
	if err != nil {
		return nil, fmt.Errorf("get jwks from %s: %w", j.Service, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("get jwks from %s: status %d", j.Service, status)
	}
	return body, nil
}

// hopByHop are the RFC 9110 §7.6.1 connection-specific headers, plus the
// Proxy-* ones, that a proxy must not forward.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

func forwardHeaders(in *http.Request, userID string) http.Header {
	h := in.Header.Clone()
	removeHopByHop(h)
	// Only the gateway may assert who the caller is.
	h.Del(UserIDHeader)
	if userID != "" {
		h.Set(UserIDHeader, userID)
	}
	// The outbound transport negotiates its own compression and decodes it.
	h.Del("Accept-Encoding")
	h.Del("Content-Length")
	if id := logx.RequestID(in.Context()); id != "" {
		h.Set("X-Request-ID", id)
	}
	if ip := ClientIP(in); ip != "" {
		if prior := h.Get("X-Forwarded-For"); prior != "" {
			ip = prior + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
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
