package chaos

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
)

// Upstream answers where one new connection of an edge goes, as the agent
// reaches it (a host endpoint). It is asked per connection, so that a
// restarted dependency on a new port, or a replaced instance, is followed,
// and so that replicas keep sharing the load.
type Upstream func(ctx context.Context) (string, error)

// dialTimeout bounds connecting to an upstream; a client of the proxy has
// its own deadlines, this only keeps a dead upstream from piling goroutines.
const dialTimeout = 5 * time.Second

// proxy is the listener of one edge. Each accepted connection is dialled to
// the upstream the edge's Upstream answers and piped through toxiproxy's
// links (both directions) of the edge's ToxicCollection, as toxiproxy's own
// Proxy does with a fixed upstream: toxics added or removed later apply to
// the open connections too.
type proxy struct {
	edge     string
	ln       net.Listener
	upstream Upstream
	tp       *toxiproxy.Proxy // holds the ToxicCollection; never Started
	server   *toxiproxy.ApiServer
	down     atomic.Int32 // how many active faults take the edge down
	seq      atomic.Uint64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(server *toxiproxy.ApiServer, edge string, ln net.Listener, up Upstream) *proxy {
	p := &proxy{
		edge: edge, ln: ln, upstream: up, server: server,
		tp:    toxiproxy.NewProxy(server, edge, ln.Addr().String(), ""),
		conns: map[net.Conn]struct{}{},
	}
	p.wg.Add(1)
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if p.down.Load() > 0 {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *proxy) pipe(client net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	up, err := p.dial(ctx)
	if err != nil {
		reset(client)
		return
	}
	// A fault that took the edge down while we dialled must not miss this
	// connection: track first, then look again.
	p.track(client, up)
	if p.down.Load() > 0 {
		p.cut()
		return
	}
	name := p.edge + "#" + strconv.FormatUint(p.seq.Add(1), 10)
	p.tp.Toxics.StartLink(p.server, name+"up", client, up, stream.Upstream)
	p.tp.Toxics.StartLink(p.server, name+"down", up, client, stream.Downstream)
}

// dialAttempts bounds how many upstreams a connection tries: an instance
// that just closed its listener (a replica being replaced) refuses, and
// the next pick is another one. Nothing has been relayed yet, so another
// try is safe for any protocol.
const dialAttempts = 3

// dial connects to the upstream, trying another pick when one refuses.
func (p *proxy) dial(ctx context.Context) (net.Conn, error) {
	var err error
	for range dialAttempts {
		var target string
		if target, err = p.upstream(ctx); err != nil {
			return nil, err
		}
		var up net.Conn
		if up, err = (&net.Dialer{}).DialContext(ctx, "tcp", target); err == nil || ctx.Err() != nil {
			return up, err
		}
	}
	return nil, err
}

// track remembers a connection pair so that a down fault can cut it. The
// links close both ends when they finish; closed pairs are swept here, as
// new ones arrive, so the set stays as large as the open connections.
func (p *proxy) track(client, up net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if closed(c) {
			delete(p.conns, c)
		}
	}
	p.conns[client] = struct{}{}
	p.conns[up] = struct{}{}
}

// closed tells a connection some goroutine closed: only then does clearing
// its (never set) read deadline fail.
func closed(c net.Conn) bool { return c.SetReadDeadline(time.Time{}) != nil }

// cut closes every open connection of the edge, with a reset so that both
// sides see the partition at once instead of a tidy end of stream.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		reset(c)
		delete(p.conns, c)
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.cut()
	p.tp.Toxics.ResetToxics(context.Background())
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
