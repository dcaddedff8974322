package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Transport is a keep-alive HTTP/1.1 transport that makes each exchange on the calling
// goroutine: write the request, then read the answer. net/http's Transport hands every request
// to a writer and a reader goroutine of its connection; for a proxy whose upstreams answer in
// microseconds, those handoffs cost about as much CPU as the rest of the proxying.
//
// The price is that a request body is written whole before the answer is read. An upstream that
// answers early without reading a large body may close the connection under it; the transport
// then still returns the answer if it arrived.
type Transport struct {
	maxIdlePerHost int
	dialer         net.Dialer

	mu        sync.Mutex
	idle      map[string][]*conn // by host:port, most recently used last
	lastSweep time.Time
}

var _ http.RoundTripper = (*Transport)(nil)

// idleTimeout is how long an unused connection is kept; an upstream that went away leaves
// nothing behind for longer than this.
const idleTimeout = 90 * time.Second

// NewTransport keeps up to maxIdlePerHost idle connections per upstream instance.
func NewTransport(maxIdlePerHost int) *Transport {
	return &Transport{
		maxIdlePerHost: maxIdlePerHost,
		dialer:         net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		idle:           map[string][]*conn{},
		lastSweep:      time.Now(),
	}
}

// conn is one upstream connection; it belongs to one exchange at a time.
type conn struct {
	nc        net.Conn
	cr        countingReader
	br        *bufio.Reader
	bw        *bufio.Writer
	host      string
	reused    bool
	idleSince time.Time
}

// countingReader counts the bytes read from the connection, so a failed exchange can tell
// whether the upstream sent anything at all.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// errStale marks an exchange that failed on a kept connection before any answer arrived: the
// upstream closed it while it was idle.
var errStale = errors.New("kept connection closed by the upstream")

// RoundTrip implements http.RoundTripper. Only the URL's host, path and query, the method, the
// header and the body are used.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for {
		c, err := t.get(ctx, req.URL.Host)
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		resp, err := t.exchange(ctx, c, req)
		// A request without a body can go again on a fresh connection; one whose body was
		// (partly) sent cannot, and the caller's retry policy decides.
		if errors.Is(err, errStale) && req.Body == nil && ctx.Err() == nil {
			continue
		}
		return resp, err
	}
}

func (t *Transport) get(ctx context.Context, host string) (*conn, error) {
	now := time.Now()
	var expired []*conn
	t.mu.Lock()
	list := t.idle[host]
	var c *conn
	for len(list) > 0 && c == nil {
		last := list[len(list)-1]
		list = list[:len(list)-1]
		if now.Sub(last.idleSince) < idleTimeout {
			c = last
		} else {
			expired = append(expired, last)
		}
	}
	t.idle[host] = list
	t.mu.Unlock()
	for _, e := range expired {
		e.nc.Close()
	}
	if c != nil {
		c.reused = true
		return c, nil
	}
	nc, err := t.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	c = &conn{nc: nc, cr: countingReader{r: nc}, host: host}
	c.br = bufio.NewReader(&c.cr)
	c.bw = bufio.NewWriter(nc)
	return c, nil
}

// put keeps c for the next exchange with its host, or closes it when enough are kept. Now and
// then it also closes connections idle for too long, whatever their host.
func (t *Transport) put(c *conn) {
	now := time.Now()
	c.idleSince = now
	var drop []*conn
	t.mu.Lock()
	if list := t.idle[c.host]; len(list) < t.maxIdlePerHost {
		t.idle[c.host] = append(list, c)
	} else {
		drop = append(drop, c)
	}
	if now.Sub(t.lastSweep) > idleTimeout {
		t.lastSweep = now
		for host, list := range t.idle {
			kept := list[:0]
			for _, k := range list {
				if now.Sub(k.idleSince) < idleTimeout {
					kept = append(kept, k)
				} else {
					drop = append(drop, k)
				}
			}
			clear(list[len(kept):])
			if len(kept) == 0 {
				delete(t.idle, host)
			} else {
				t.idle[host] = kept
			}
		}
	}
	t.mu.Unlock()
	for _, d := range drop {
		d.nc.Close()
	}
}

// aLongTimeAgo is a deadline that makes blocked reads and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes req on c and reads the answer, whose body keeps c until it is closed. The
// context's end, by deadline or cancellation, unblocks the connection: setting its deadline up
// front as well would cost two more timer updates per exchange.
func (t *Transport) exchange(ctx context.Context, c *conn, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.nc.Close()
		return nil, ctxErr(ctx, err)
	}

	out := *req
	var rec *recordingBody
	if req.Body != nil {
		rec = &recordingBody{rc: req.Body}
		out.Body = rec
	}
	before := c.cr.n
	err := out.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		if rec != nil && rec.err != nil {
			return fail(rec.err)
		}
		// An upstream that answered without reading all of the body may have closed its side.
		if resp, rerr := readResponse(c, req); rerr == nil {
			return t.wrap(ctx, c, resp, stop, false), nil
		}
		if c.reused && c.cr.n == before {
			err = errors.Join(errStale, err)
		}
		return fail(err)
	}
	resp, err := readResponse(c, req)
	if err != nil {
		if c.reused && c.cr.n == before {
			err = errors.Join(errStale, err)
		}
		return fail(err)
	}
	return t.wrap(ctx, c, resp, stop, !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols), nil
}

// readResponse reads the final answer, skipping informational (1xx) ones.
func readResponse(c *conn, req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}

func (t *Transport) wrap(ctx context.Context, c *conn, resp *http.Response, stop func() bool, reuse bool) *http.Response {
	resp.Body = &responseBody{
		rc: resp.Body, ctx: ctx, t: t, c: c, stop: stop, reuse: reuse,
		// An answer without a body is complete as it stands.
		eof: resp.Body == http.NoBody,
	}
	return resp
}

// responseBody hands the connection back when the answer has been read to its end, and closes
// it otherwise: what is left of a large answer is not worth reading for reuse.
type responseBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	t      *Transport
	c      *conn
	stop   func() bool
	reuse  bool
	eof    bool
	closed bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read on a closed upstream answer")
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		err = ctxErr(b.ctx, err)
	}
	return n, err
}

func (b *responseBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	// stop reports false once the context's end has poisoned the connection's deadline.
	if b.stop() && b.reuse && b.eof {
		b.t.put(b.c)
		return nil
	}
	return b.c.nc.Close()
}

// ctxErr reports a failure caused by the context's end as the context's error, so callers can
// tell a timeout from a broken upstream; the connection's deadline is only ever set by it.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// recordingBody keeps the error of the caller's body: http.Request.Write reports it in a type
// of its own that does not unwrap.
type recordingBody struct {
	rc  io.ReadCloser
	err error
}

func (r *recordingBody) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

func (r *recordingBody) Close() error { return r.rc.Close() }
