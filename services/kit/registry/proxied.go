package registry

import (
	"fmt"
	"net"
	"strings"
)

// Proxied is a Picker whose answers for some services go through a proxy
// (msctl's chaos proxies, which relay each connection to a live instance
// themselves): it still asks the inner Picker, so that "no live instance"
// and the instance's id stay what the registry says, and only the address
// becomes the proxy's.
type Proxied struct {
	inner   Picker
	proxies map[string]string
}

var _ Picker = (*Proxied)(nil)

// NewProxied wraps inner; proxies maps service names to proxy host:port.
func NewProxied(inner Picker, proxies map[string]string) *Proxied {
	return &Proxied{inner: inner, proxies: proxies}
}

// Pick answers inner's instance, at the service's proxy address if it has one.
func (p *Proxied) Pick(service string) (Instance, error) {
	in, err := p.inner.Pick(service)
	if err != nil {
		return in, err
	}
	if addr, ok := p.proxies[service]; ok {
		in.Addr = addr
	}
	return in, nil
}

// ParseProxies reads UPSTREAM_PROXIES entries, each service=host:port.
func ParseProxies(entries []string) (map[string]string, error) {
	out := map[string]string{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		svc, addr, ok := strings.Cut(e, "=")
		if _, _, err := net.SplitHostPort(addr); !ok || svc == "" || err != nil {
			return nil, fmt.Errorf("UPSTREAM_PROXIES entry %q: want service=host:port, e.g. inventory=127.0.0.1:41001", e)
		}
		out[svc] = addr
	}
	return out, nil
}
