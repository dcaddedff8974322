package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/msctl/msctl/internal/secrets"
)

var (
	rootKeys      = []string{"project", "gateway", "infra", "services", "kubernetes"}
	gatewayKeys   = []string{"port"}
	infraKeys     = []string{"postgres", "broker", "registry"}
	componentKeys = []string{"image", "version", "port", "replicas"}
	serviceKeys   = []string{"path", "language", "port", "public", "depends_on", "database", "health", "env", "secrets", "replicas", "routes", "autoscale"}
)

// Load reads, parses and validates the manifest at path. Problems come back
// as Errors (every one found) or, when the file cannot be read or parsed at
// all, a single *Error. File names in errors are path as given, so callers
// control how they read (relative to the current directory, typically).
func Load(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{
			File: path,
			Msg:  fmt.Sprintf("cannot read manifest: %v", unwrapPathError(err)),
			Fix:  "check the path passed with -f, or run msctl inside a workspace",
			err:  err,
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return parse(path, abs, data)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// svcLines remembers where a service's fields were written, for validation
// messages that are only possible once every service is known.
type svcLines struct {
	key, path, port, public, dependsOn int
	deps                               []int          // line of each depends_on entry
	routes                             map[string]int // line of each route prefix
}

type parser struct {
	file      string
	errs      Errors
	lines     map[string]*svcLines
	infraLine map[string]int // line of infra.<name>.port
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func parse(file, abs string, data []byte) (*Manifest, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e := &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Fix: "fix the YAML syntax at that line", err: err}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
		}
		return nil, e
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Msg: "manifest is empty", Fix: "declare at least project: and services:"}
	}
	p := &parser{file: file, lines: map[string]*svcLines{}, infraLine: map[string]int{}}
	m := &Manifest{
		path:    abs,
		Gateway: Gateway{Port: DefaultGatewayPort},
		Infra: Infra{
			Postgres: Component{Image: DefaultPostgresImage, Version: DefaultPostgresVersion},
			Broker:   Component{Image: DefaultBrokerImage, Version: DefaultBrokerVersion},
			Registry: Component{Image: DefaultRegistryImage, Version: DefaultRegistryVersion},
		},
		Services: map[string]*Service{},
	}
	root := doc.Content[0]
	fields := p.mapping(root, "the manifest", "", rootKeys)
	gatewayLine := 0
	if kv, ok := fields["project"]; ok {
		m.Project = p.str(kv.val, "project")
		if m.Project != "" && !ValidName(m.Project) {
			p.errorf(kv.val, "use lower-case letters, digits and '-', starting with a letter, at most 63 characters (e.g. shop)",
				"project %q is not a valid name", m.Project)
		}
	} else {
		p.errorf(root, "add a line like: project: shop", "project is required")
	}
	if kv, ok := fields["gateway"]; ok {
		gf := p.mapping(kv.val, "gateway", "gateway.", gatewayKeys)
		if pv, ok := gf["port"]; ok {
			m.Gateway.Port = p.port(pv.val, "gateway.port", false)
			gatewayLine = pv.val.Line
		}
	}
	if kv, ok := fields["infra"]; ok {
		inf := p.mapping(kv.val, "infra", "infra.", infraKeys)
		p.component(inf, "postgres", &m.Infra.Postgres)
		p.component(inf, "broker", &m.Infra.Broker)
		p.component(inf, "registry", &m.Infra.Registry)
	}
	p.kubernetes(fields, m)
	if kv, ok := fields["services"]; ok && !isNull(kv.val) {
		if kv.val.Kind != yaml.MappingNode {
			p.errorf(kv.val, "write services as a mapping of name to settings, e.g. services: {users: {language: go}}", "services must be a mapping")
		} else {
			seen := map[string]bool{}
			for i := 0; i+1 < len(kv.val.Content); i += 2 {
				k, v := kv.val.Content[i], kv.val.Content[i+1]
				if seen[k.Value] {
					p.errorf(k, "remove one of the two declarations", "service %q is declared twice", k.Value)
					continue
				}
				seen[k.Value] = true
				if !ValidName(k.Value) {
					p.errorf(k, "use lower-case letters, digits and '-', starting with a letter, at most 63 characters (e.g. users)",
						"service name %q is not a valid name", k.Value)
					continue
				}
				m.Services[k.Value] = p.service(k, v, abs)
			}
		}
	}
	p.validate(m, gatewayLine)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return m, nil
}

func (p *parser) errorf(n *yaml.Node, fix, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

func (p *parser) errorAt(line int, fix, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

type keyVal struct{ key, val *yaml.Node }

// mapping checks that n is a mapping with only allowed keys, each once, and
// returns its entries by key. A null node is an empty mapping, so that
// "postgres:" with nothing under it means "all defaults".
func (p *parser) mapping(n *yaml.Node, what, prefix string, allowed []string) map[string]keyVal {
	out := map[string]keyVal{}
	if isNull(n) {
		return out
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "allowed keys: "+strings.Join(allowed, ", "), "%s must be a mapping", what)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(allowed, k.Value) {
			fix := "allowed keys: " + strings.Join(allowed, ", ")
			if s := closest(k.Value, allowed); s != "" {
				fix = fmt.Sprintf("did you mean %q? %s", s, fix)
			}
			p.errorf(k, fix, "unknown key %q in %s", prefix+k.Value, what)
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errorf(k, "keep only one", "key %q is set twice", prefix+k.Value)
			continue
		}
		out[k.Value] = keyVal{k, v}
	}
	return out
}

func (p *parser) component(fields map[string]keyVal, name string, c *Component) {
	kv, ok := fields[name]
	if !ok {
		return
	}
	where := "infra." + name
	cf := p.mapping(kv.val, where, where+".", componentKeys)
	if v, ok := cf["image"]; ok {
		if s := p.str(v.val, where+".image"); s != "" {
			c.Image = s
		}
	}
	if v, ok := cf["version"]; ok {
		if s := p.str(v.val, where+".version"); s != "" {
			c.Version = s
		}
	}
	if v, ok := cf["port"]; ok {
		c.Port = p.port(v.val, where+".port", true)
		p.infraLine[name] = v.val.Line
	}
	p.componentReplicas(name, cf, c)
}

func (p *parser) service(k, v *yaml.Node, abs string) *Service {
	name := k.Value
	where := "services." + name
	s := &Service{
		Name:     name,
		Path:     "services/" + name,
		Language: LangGo,
		Health:   DefaultHealth,
		Replicas: DefaultReplicas,
		Env:      map[string]string{},
		Line:     k.Line,
	}
	ln := &svcLines{key: k.Line, path: k.Line}
	p.lines[name] = ln
	f := p.mapping(v, "service "+name, where+".", serviceKeys)
	if kv, ok := f["path"]; ok {
		if str := p.str(kv.val, where+".path"); str != "" {
			s.Path = str
			ln.path = kv.val.Line
		}
	}
	if filepath.IsAbs(s.Path) {
		s.Dir = filepath.Clean(s.Path)
	} else {
		s.Dir = filepath.Join(filepath.Dir(abs), filepath.FromSlash(s.Path))
	}
	if kv, ok := f["language"]; ok {
		lang := p.str(kv.val, where+".language")
		switch lang {
		case LangGo, LangNode:
			s.Language = lang
		case "":
		default:
			p.errorf(kv.val, "use language: go or language: node", "%s.language %q is not supported", where, lang)
		}
	}
	if kv, ok := f["port"]; ok {
		s.Port = p.port(kv.val, where+".port", true)
		ln.port = kv.val.Line
	}
	if kv, ok := f["public"]; ok {
		s.Public = p.boolean(kv.val, where+".public")
		ln.public = kv.val.Line
	}
	if kv, ok := f["database"]; ok {
		s.Database = p.boolean(kv.val, where+".database")
	}
	if kv, ok := f["health"]; ok {
		if h := p.str(kv.val, where+".health"); h != "" {
			if !strings.HasPrefix(h, "/") {
				p.errorf(kv.val, "write an absolute HTTP path, e.g. health: /readyz", "%s.health %q is not a path", where, h)
			}
			s.Health = h
		}
	}
	if kv, ok := f["replicas"]; ok {
		r, ok := p.integer(kv.val, where+".replicas")
		if ok {
			s.Replicas = r
		}
		if ok && s.Replicas < 1 {
			p.errorf(kv.val, "set replicas: 1 or more (or remove it for 1)", "%s.replicas is %d, must be at least 1", where, s.Replicas)
			s.Replicas = 1
		}
	}
	if kv, ok := f["env"]; ok && !isNull(kv.val) {
		if kv.val.Kind != yaml.MappingNode {
			p.errorf(kv.val, "write env as a mapping, e.g. env: {LOG_LEVEL: debug}", "%s.env must be a mapping", where)
		} else {
			for i := 0; i+1 < len(kv.val.Content); i += 2 {
				ek, ev := kv.val.Content[i], kv.val.Content[i+1]
				s.Env[ek.Value] = p.str(ev, where+".env."+ek.Value)
			}
		}
	}
	s.Secrets = p.secretNames(f, where)
	if kv, ok := f["routes"]; ok && !isNull(kv.val) {
		if kv.val.Kind != yaml.MappingNode {
			p.errorf(kv.val, "write a mapping of path prefix to access, e.g. routes: {/api/v1/orders: auth}", "%s.routes must be a mapping", where)
		} else {
			s.Routes = map[string]string{}
			ln.routes = map[string]int{}
			for i := 0; i+1 < len(kv.val.Content); i += 2 {
				rk, rv := kv.val.Content[i], kv.val.Content[i+1]
				access := p.str(rv, where+".routes."+rk.Value)
				switch {
				case !strings.HasPrefix(rk.Value, "/"):
					p.errorf(rk, "write a path prefix starting with /, e.g. /api/v1/orders", "route %q of service %q is not a path", rk.Value, name)
				case access != AccessPublic && access != AccessAuth:
					if access != "" {
						p.errorf(rv, "use public (no token needed) or auth (JWT required)", "route %s of service %q has access %q", rk.Value, name, access)
					}
				default:
					s.Routes[rk.Value] = access
					ln.routes[rk.Value] = rk.Line
				}
			}
		}
	}
	s.Autoscale = p.autoscale(f, where)
	if kv, ok := f["depends_on"]; ok && !isNull(kv.val) {
		ln.dependsOn = kv.key.Line
		if kv.val.Kind != yaml.SequenceNode {
			p.errorf(kv.val, "write a list, e.g. depends_on: [users, orders]", "%s.depends_on must be a list of service names", where)
		} else {
			for _, d := range kv.val.Content {
				dep := p.str(d, where+".depends_on entry")
				if dep == "" || slices.Contains(s.DependsOn, dep) {
					continue
				}
				s.DependsOn = append(s.DependsOn, dep)
				ln.deps = append(ln.deps, d.Line)
			}
		}
	}
	return s
}

// secretNames reads a service's `secrets:`, the shared secrets msctl
// derives from the workspace secret for it (internal/secrets).
func (p *parser) secretNames(f map[string]keyVal, where string) []string {
	kv, ok := f["secrets"]
	if !ok || isNull(kv.val) {
		return nil
	}
	if kv.val.Kind != yaml.SequenceNode {
		p.errorf(kv.val, "write a list, e.g. secrets: [card-vault]", "%s.secrets must be a list of secret names", where)
		return nil
	}
	var names []string
	for _, n := range kv.val.Content {
		name := p.str(n, where+".secrets entry")
		switch {
		case name == "" || slices.Contains(names, name):
		case !secrets.ValidName(name):
			p.errorf(n, "use lower case letters, digits and dashes, e.g. card-vault", "%s.secrets: %q is not a valid secret name", where, name)
		default:
			names = append(names, name)
		}
	}
	return names
}

func (p *parser) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "write a single value", "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (p *parser) integer(n *yaml.Node, what string) (int, bool) {
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		p.errorf(n, "write a whole number", "%s must be an integer, got %q", what, n.Value)
		return 0, false
	}
	return v, true
}

func (p *parser) port(n *yaml.Node, what string, zeroOK bool) int {
	v, ok := p.integer(n, what)
	if !ok {
		return 0
	}
	lo := 1
	if zeroOK {
		lo = 0
	}
	if v < lo || v > 65535 {
		fix := "use a port between 1 and 65535"
		if zeroOK {
			fix = "use a port between 1 and 65535, or 0 (or nothing) to have a free one chosen"
		}
		p.errorf(n, fix, "%s %d is out of range", what, v)
		return 0
	}
	return v
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	var v bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		p.errorf(n, "write true or false", "%s must be true or false, got %q", what, n.Value)
		return false
	}
	return v
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}
