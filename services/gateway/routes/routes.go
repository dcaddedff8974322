// Package routes parses the gateway's route table (GATEWAY_ROUTES) and matches
// request paths against it by longest prefix.
package routes

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Access says whether a route needs a verified token.
type Access int

const (
	// Public routes are forwarded without authentication.
	Public Access = iota
	// Auth routes need a valid bearer token; the gateway forwards it and the service checks it again.
	Auth
)

func (a Access) String() string {
	if a == Auth {
		return "auth"
	}
	return "public"
}

// Route maps a path prefix to the service that serves it.
type Route struct {
	Prefix  string
	Service string
	Access  Access
}

// Table is an immutable set of routes, ordered for longest-prefix matching.
type Table struct {
	routes []Route // longest prefix first
}

// internalPrefix is never routed: internal endpoints are for service-to-service calls only.
const internalPrefix = "/internal"

// Parse reads the GATEWAY_ROUTES format:
// `/api/v1/auth=users:public,/api/v1/orders=orders:auth`.
// Whitespace around entries is ignored; an empty string is an empty table.
func Parse(spec string) (*Table, error) {
	t := &Table{}
	seen := map[string]bool{}
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		r, err := parseEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w (want PREFIX=SERVICE:public|auth, e.g. /api/v1/orders=orders:auth)", entry, err)
		}
		if seen[r.Prefix] {
			return nil, fmt.Errorf("route %q: prefix %s is declared twice", entry, r.Prefix)
		}
		seen[r.Prefix] = true
		t.routes = append(t.routes, r)
	}
	sort.SliceStable(t.routes, func(i, j int) bool { return len(t.routes[i].Prefix) > len(t.routes[j].Prefix) })
	return t, nil
}

func parseEntry(entry string) (Route, error) {
	prefix, target, ok := strings.Cut(entry, "=")
	if !ok {
		return Route{}, fmt.Errorf("missing '='")
	}
	service, access, ok := strings.Cut(target, ":")
	if !ok {
		return Route{}, fmt.Errorf("missing ':' before the access mode")
	}
	prefix, service, access = strings.TrimSpace(prefix), strings.TrimSpace(service), strings.TrimSpace(access)
	if !strings.HasPrefix(prefix, "/") {
		return Route{}, fmt.Errorf("prefix must start with '/'")
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" || path.Clean(prefix) != prefix {
		return Route{}, fmt.Errorf("prefix must be a clean, non-root path")
	}
	if underPrefix(prefix, internalPrefix) {
		return Route{}, fmt.Errorf("%s paths are internal and never routed", internalPrefix)
	}
	if !validService(service) {
		return Route{}, fmt.Errorf("service name must be lower-case letters, digits and '-'")
	}
	r := Route{Prefix: prefix, Service: service}
	switch access {
	case "public":
		r.Access = Public
	case "auth":
		r.Access = Auth
	default:
		return Route{}, fmt.Errorf("access mode %q is neither public nor auth", access)
	}
	return r, nil
}

func validService(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// underPrefix reports whether p is prefix itself or below it on a segment
// boundary, so /api/v1/orders matches /api/v1/orders/1 but not /api/v1/ordersx.
func underPrefix(p, prefix string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

// Match returns the route with the longest prefix covering p. Paths that are
// not clean (dot segments, doubled slashes) never match, so a request cannot
// climb out of its prefix into /internal.
func (t *Table) Match(p string) (Route, bool) {
	if p == "" || path.Clean(p) != p && path.Clean(p)+"/" != p {
		return Route{}, false
	}
	if underPrefix(p, internalPrefix) {
		return Route{}, false
	}
	for _, r := range t.routes {
		if underPrefix(p, r.Prefix) {
			return r, true
		}
	}
	return Route{}, false
}

// Routes returns the table, longest prefix first.
func (t *Table) Routes() []Route {
	return append([]Route(nil), t.routes...)
}

// Services returns the distinct upstream services in the table, sorted.
func (t *Table) Services() []string {
	set := map[string]bool{}
	for _, r := range t.routes {
		set[r.Service] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
