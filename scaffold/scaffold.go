// Package scaffold creates a new service from an embedded template set: it
// checks the request against the workspace, renders every file and the
// manifest change in memory (Plan), and then writes them all or nothing
// (Plan.Apply).
package scaffold

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/kit/outbox"
	"github.com/msctl/msctl/templates"
)

// Options is a request for a new service.
type Options struct {
	// ManifestPath is the msctl.yaml of the workspace the service joins;
	// New loads and checks it.
	ManifestPath string
	// Lang names the template set, e.g. "go".
	Lang string
	Name string
	// DB gives the service its own database and migrations. Consuming or
	// publishing events implies it: the inbox and the outbox are tables.
	DB bool
	// Route is a gateway path prefix the service serves, e.g. /api/v1/shipping.
	Route string
	// Public makes Route reachable without a token; otherwise it needs a JWT.
	Public bool
	// Consumes and Publishes name events of services/kit/events.
	Consumes  []string
	Publishes []string
	// Depends names services that must be ready before this one starts.
	Depends []string
	// Port fixes the service's host port; 0 has a free one chosen.
	Port int
}

// Refusal is a request that cannot be carried out as asked; nothing was
// changed. It says what is wrong and how to fix it.
type Refusal struct {
	Msg string
	Fix string
}

func (r *Refusal) Error() string { return r.Msg + "\n\tfix: " + r.Fix }

func refuse(fix, format string, args ...any) *Refusal {
	return &Refusal{Msg: fmt.Sprintf(format, args...), Fix: fix}
}

// File is one file of a plan, its path relative to the workspace root in
// slash form.
type File struct {
	Path string
	Data []byte
}

// Plan is everything a new service changes, computed before anything is
// written.
type Plan struct {
	// Root is the workspace root; ManifestPath the manifest inside it.
	Root         string
	ManifestPath string
	Service      string
	// Dir is the service directory relative to Root, slash form.
	Dir string
	// Files are the rendered files, sorted by path.
	Files []File
	// Entry is the manifest entry added for the service, for display.
	Entry string
	// Manifest is the manifest's new content.
	Manifest []byte
	// Notes explain choices made for the user, e.g. a database implied by --consumes.
	Notes []string
	// Route is the gateway prefix routed to the service ("" for none) and
	// Access its access level.
	Route  string
	Access string
	// Template and Version identify the template set used.
	Template string
	Version  string

	// hook, when set by tests, runs after each step of Apply and can fail it.
	hook func(step string) error
}

// Data is what the templates see.
type Data struct {
	Name            string
	Language        string
	TemplateVersion string
	// Module is the workspace's Go module; Dir the service directory
	// (slash form); Import the service's import path.
	Module string
	Dir    string
	Import string
	// Ident is Name as an exported Go identifier (shipping-api: ShippingApi);
	// PkgAlias is Name as a lower-case import alias (shippingapi).
	Ident    string
	PkgAlias string
	DB       bool
	// Route and Access as in the manifest; Route may be empty. Base is the
	// path prefix of the service's endpoints: Route, or /internal/NAME.
	Route  string
	Access string
	Base   string
	// Consumes and Publishes are the events; Streams groups Consumes by the
	// stream that stores them, one durable consumer each.
	Consumes  []Event
	Publishes []Event
	Streams   []Stream
	// InboxSchema and OutboxSchema are kit's tables, copied into the
	// service's migration (database per service).
	InboxSchema  string
	OutboxSchema string
}

// Stream is one stream the service consumes from.
type Stream struct {
	// Expr is the Go expression naming the stream, e.g. events.StreamOrderEvents.
	Expr   string
	Events []Event
}

// New checks opts against the workspace and renders the plan. Problems with
// the request are a *Refusal.
func New(opts Options) (*Plan, error) {
	m, err := manifest.Load(opts.ManifestPath)
	if err != nil {
		return nil, err
	}
	set, ok := templates.Lookup(opts.Lang)
	if !ok {
		var names []string
		for _, s := range templates.Sets() {
			names = append(names, s.Name)
		}
		return nil, refuse("use one of: "+strings.Join(names, ", "), "no template set for language %q", opts.Lang)
	}
	if err := checkName(m, opts.Name); err != nil {
		return nil, err
	}
	d := Data{
		Name:            opts.Name,
		Language:        set.Name,
		TemplateVersion: templates.Version,
		Dir:             "services/" + opts.Name,
		Ident:           ident(opts.Name),
		PkgAlias:        strings.ReplaceAll(opts.Name, "-", ""),
		DB:              opts.DB,
		InboxSchema:     strings.TrimSpace(inbox.Schema),
		OutboxSchema:    strings.TrimSpace(outbox.Schema),
	}
	var notes []string
	if err := checkRoute(m, opts, &d); err != nil {
		return nil, err
	}
	if err := checkDepends(m, opts.Depends); err != nil {
		return nil, err
	}
	if d.Consumes, err = lookupEvents("--consumes", opts.Consumes); err != nil {
		return nil, err
	}
	if d.Publishes, err = lookupEvents("--publishes", opts.Publishes); err != nil {
		return nil, err
	}
	root := m.Dir()
	exprs, err := streamExprs(root)
	if err != nil {
		return nil, err
	}
	d.Streams = groupByStream(d.Consumes, exprs)
	if !d.DB && (len(d.Consumes) > 0 || len(d.Publishes) > 0) {
		d.DB = true
		notes = append(notes, "database: true, because the inbox (--consumes) and the outbox (--publishes) are tables")
	}
	if err := checkPort(m, opts.Port); err != nil {
		return nil, err
	}
	if d.Module, err = modulePath(root); err != nil {
		return nil, err
	}
	d.Import = d.Module + "/" + d.Dir

	files, err := render(set, d)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if strings.HasPrefix(f.Path, d.Dir+"/") {
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(f.Path))); err == nil {
			return nil, refuse("remove or rename "+f.Path+", or choose another service name", "%s already exists", f.Path)
		}
	}
	if d.Route == "" {
		notes = append(notes, "no contract stub: nothing calls "+d.Name+" yet (with --route the gateway does)")
	}

	old, err := os.ReadFile(m.Path())
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	entry := entryLines(d, opts)
	updated, err := addService(old, d.Name, entry)
	if err != nil {
		return nil, err
	}
	return &Plan{
		Root:         root,
		ManifestPath: m.Path(),
		Service:      d.Name,
		Dir:          d.Dir,
		Files:        files,
		Entry:        renderEntry(d.Name, entry, "", "  "),
		Manifest:     updated,
		Notes:        notes,
		Route:        d.Route,
		Access:       d.Access,
		Template:     set.Name,
		Version:      templates.Version,
	}, nil
}

func checkName(m *manifest.Manifest, name string) error {
	if !manifest.ValidName(name) {
		return refuse("use lower-case letters, digits and '-', starting with a letter, at most 63 characters (e.g. shipping)",
			"service name %q is not a valid name", name)
	}
	if _, ok := m.Services[name]; ok {
		return refuse("choose another name, or remove services."+name+" from "+manifest.FileName,
			"service %q already exists in %s", name, manifest.FileName)
	}
	dir := filepath.Join(m.Dir(), "services", name)
	if _, err := os.Lstat(dir); err == nil {
		return refuse("choose another name, or move services/"+name+" away",
			"services/%s already exists", name)
	}
	for _, s := range m.Services {
		if filepath.Clean(s.Dir) == filepath.Clean(dir) {
			return refuse("choose another name", "services/%s is already the directory of service %q", name, s.Name)
		}
	}
	return nil
}

func checkRoute(m *manifest.Manifest, opts Options, d *Data) error {
	d.Base = "/internal/" + opts.Name
	if opts.Route == "" {
		if opts.Public {
			return refuse("add --route /api/v1/PATH, or drop --public", "--public needs --route: only a routed prefix can be public")
		}
		return nil
	}
	r := opts.Route
	if !isCleanPrefix(r) {
		return refuse("write a clean absolute path prefix like /api/v1/"+opts.Name+" (no trailing slash, no . or .. or empty segments, only letters, digits and -._~)",
			"route %q is not a path prefix", r)
	}
	if r == "/internal" || strings.HasPrefix(r, "/internal/") {
		return refuse("choose a prefix outside /internal, e.g. /api/v1/"+opts.Name, "route %s is internal: the gateway never routes /internal/...", r)
	}
	// The gateway sends a request to the longest prefix that matches it, so
	// a prefix inside another service's, or around it, would take over
	// some of that service's paths.
	for _, n := range m.ServiceNames() {
		for _, taken := range slices.Sorted(maps.Keys(m.Services[n].Routes)) {
			fix := "choose a prefix that neither contains nor lies under " + taken + suggestRoute(m, opts.Name) + ", or remove " + taken + " from services." + n + ".routes"
			switch overlap(r, taken) {
			case sameRoute:
				return refuse("choose another prefix"+suggestRoute(m, opts.Name)+", or remove it from services."+n+".routes", "route %s is already taken by service %q", r, n)
			case underRoute:
				return refuse(fix, "route %s lies under %s of service %q: it would take over part of %s's paths (routes must not nest)", r, taken, n, n)
			case aroundRoute:
				return refuse(fix, "route %s contains %s of service %q: it would claim the paths around %s's (routes must not nest)", r, taken, n, n)
			}
		}
	}
	d.Route, d.Base, d.Access = r, r, manifest.AccessAuth
	if opts.Public {
		d.Access = manifest.AccessPublic
	}
	return nil
}

// suggestRoute names the conventional prefix of service name as an example
// for a refusal's fix, or nothing when that prefix overlaps a taken one.
func suggestRoute(m *manifest.Manifest, name string) string {
	r := "/api/v1/" + name
	for _, s := range m.Services {
		for taken := range s.Routes {
			if overlap(r, taken) != disjointRoute {
				return ""
			}
		}
	}
	return " (e.g. " + r + ")"
}

// isCleanPrefix reports whether r is a path prefix the gateway matches as
// written: absolute, already clean, not the root, and made of unreserved
// URL characters only, so that no escaping, pattern syntax or separator
// of GATEWAY_ROUTES ("=", ",", ":") can change what it means.
func isCleanPrefix(r string) bool {
	if !strings.HasPrefix(r, "/") || r == "/" || path.Clean(r) != r {
		return false
	}
	for _, c := range r {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("/-._~", c):
		default:
			return false
		}
	}
	return true
}

// How a new route prefix relates to a taken one.
const (
	disjointRoute = iota
	sameRoute
	underRoute  // the new prefix lies inside the taken one
	aroundRoute // the new prefix contains the taken one
)

// overlap compares two route prefixes by whole path segments, so
// /api/v1/ship and /api/v1/shipping are disjoint. taken comes from the
// manifest, which also accepts it with a trailing slash.
func overlap(r, taken string) int {
	a, b := segments(r), segments(path.Clean("/"+taken))
	n := min(len(a), len(b))
	switch {
	case !slices.Equal(a[:n], b[:n]):
		return disjointRoute
	case len(a) == len(b):
		return sameRoute
	case len(a) > len(b):
		return underRoute
	default:
		return aroundRoute
	}
}

// segments splits a clean absolute path into its segments; "/" has none.
func segments(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(strings.TrimPrefix(p, "/"), "/")
}

func checkDepends(m *manifest.Manifest, deps []string) error {
	for _, dep := range deps {
		if _, ok := m.Services[dep]; !ok {
			return refuse("depend on one of: "+strings.Join(m.ServiceNames(), ", "), "dependency %q is not a service of %s", dep, manifest.FileName)
		}
	}
	return nil
}

func lookupEvents(flag string, names []string) ([]Event, error) {
	var out []Event
	for _, n := range names {
		e, err := LookupEvent(n)
		if err != nil {
			return nil, refuse("use one of: "+strings.Join(EventNames(), ", "), "%s: unknown event %q", flag, n)
		}
		if !slices.ContainsFunc(out, func(o Event) bool { return o.Name == e.Name }) {
			out = append(out, e)
		}
	}
	return out, nil
}

func groupByStream(evs []Event, exprs map[string]string) []Stream {
	var out []Stream
	for _, e := range evs {
		expr := exprs[e.Stream]
		i := slices.IndexFunc(out, func(s Stream) bool { return s.Expr == expr })
		if i < 0 {
			out = append(out, Stream{Expr: expr})
			i = len(out) - 1
		}
		out[i].Events = append(out[i].Events, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Expr < out[j].Expr })
	return out
}

func checkPort(m *manifest.Manifest, port int) error {
	if port == 0 {
		return nil
	}
	if port < 1 || port > 65535 {
		return refuse("use a port between 1 and 65535, or leave --port out to have a free one chosen", "port %d is out of range", port)
	}
	used := map[int]string{
		m.Gateway.Port:        "gateway.port",
		m.Infra.Postgres.Port: "infra.postgres.port",
		m.Infra.Broker.Port:   "infra.broker.port",
		m.Infra.Registry.Port: "infra.registry.port",
	}
	for _, n := range m.ServiceNames() {
		if s := m.Services[n]; s.Port != 0 {
			used[s.Port] = "services." + n + ".port"
		}
	}
	if who, ok := used[port]; ok {
		return refuse("choose another port, or leave --port out to have a free one chosen", "port %d is already used by %s", port, who)
	}
	return nil
}

// modulePath reads the module path from the workspace's go.mod: generated
// code imports services/kit and its own packages through it.
func modulePath(root string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", refuse("run msctl new in a workspace whose root holds go.mod (one module with services/kit)", "no go.mod in %s", root)
	}
	if err != nil {
		return "", fmt.Errorf("read go.mod: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`), nil
		}
	}
	return "", refuse("add a module line to go.mod", "go.mod in %s declares no module", root)
}

// ident turns a DNS label into an exported Go identifier: shipping-api
// becomes ShippingApi.
func ident(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
