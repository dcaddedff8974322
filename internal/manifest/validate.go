package manifest

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// validate runs the checks that need the whole manifest.
func (p *parser) validate(m *Manifest, gatewayLine int) {
	names := m.ServiceNames()
	var public *Service
	for _, name := range names {
		s, ln := m.Services[name], p.lines[name]
		if fi, err := os.Stat(s.Dir); err != nil || !fi.IsDir() {
			p.errorAt(ln.path, fmt.Sprintf("create the directory %s (relative to %s), or set %s.path to where the service lives", s.Path, m.Dir(), "services."+name),
				"service %q: directory %s does not exist", name, s.Path)
		}
		if s.Public {
			if public != nil {
				p.errorAt(ln.public, "keep public: true on one service only (the one behind gateway.port)",
					"services %q and %q are both public", public.Name, name)
			} else {
				public = s
			}
			if s.Port != 0 && s.Port != m.Gateway.Port {
				p.errorAt(ln.port, "remove port: from the public service; it listens on gateway.port",
					"public service %q has port %d but gateway.port is %d", name, s.Port, m.Gateway.Port)
			}
		}
		if s.Replicas > 1 && (s.Port != 0 || s.Public) {
			p.errorAt(ln.key, "remove port: (and public:) to run several replicas, or set replicas: 1",
				"service %q has %d replicas but a fixed host port serves only one", name, s.Replicas)
		}
		for i, dep := range s.DependsOn {
			if _, ok := m.Services[dep]; !ok {
				fix := "declare services." + dep + " or remove it from depends_on"
				if c := closest(dep, names); c != "" {
					fix = fmt.Sprintf("did you mean %q? ", c) + fix
				}
				p.errorAt(ln.deps[i], fix, "service %q depends on unknown service %q", name, dep)
			}
		}
	}
	p.cycles(m, names)
	p.ports(m, names, gatewayLine)
	p.routes(m, names)
}

// routes reports a path prefix routed to two services: the gateway could
// only pick one of them.
func (p *parser) routes(m *Manifest, names []string) {
	owner := map[string]string{}
	for _, n := range names {
		s := m.Services[n]
		prefixes := make([]string, 0, len(s.Routes))
		for prefix := range s.Routes {
			prefixes = append(prefixes, prefix)
		}
		slices.Sort(prefixes)
		for _, prefix := range prefixes {
			if prev, ok := owner[prefix]; ok {
				p.errorAt(p.lines[n].routes[prefix], "route each path prefix to one service only",
					"route %s of service %q is already routed to %q", prefix, n, prev)
				continue
			}
			owner[prefix] = n
		}
	}
}

// cycles reports each dependency cycle once, as a -> b -> a, starting from
// its alphabetically first service.
func (p *parser) cycles(m *Manifest, names []string) {
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	reported := map[string]bool{}
	var stack []string
	var visit func(string)
	visit = func(n string) {
		state[n] = onStack
		stack = append(stack, n)
		for _, d := range m.Services[n].DependsOn {
			if _, ok := m.Services[d]; !ok {
				continue
			}
			switch state[d] {
			case unvisited:
				visit(d)
			case onStack:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				cyc := rotateToMin(append([]string(nil), stack[i:]...))
				key := strings.Join(cyc, ",")
				if reported[key] {
					continue
				}
				reported[key] = true
				p.errorAt(p.lines[cyc[0]].dependsOn, "remove one of these depends_on entries so services can start in order",
					"dependency cycle: %s -> %s", strings.Join(cyc, " -> "), cyc[0])
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, n := range names {
		if state[n] == unvisited {
			visit(n)
		}
	}
}

func rotateToMin(c []string) []string {
	mi := 0
	for i := range c {
		if c[i] < c[mi] {
			mi = i
		}
	}
	return append(c[mi:], c[:mi]...)
}

// ports reports fixed host ports used twice. Zero ports are chosen free at
// start and never collide.
func (p *parser) ports(m *Manifest, names []string, gatewayLine int) {
	type use struct {
		who  string
		line int
	}
	used := map[int]use{}
	claim := func(port int, who string, line int) {
		if port == 0 {
			return
		}
		if prev, ok := used[port]; ok {
			at := ""
			if prev.line > 0 {
				at = fmt.Sprintf(" (line %d)", prev.line)
			}
			p.errorAt(line, "choose another port, or remove port: to have a free one chosen at start",
				"port %d of %s is already used by %s%s", port, who, prev.who, at)
			return
		}
		used[port] = use{who, line}
	}
	claim(m.Gateway.Port, "gateway.port", gatewayLine)
	claim(m.Infra.Postgres.Port, "infra.postgres.port", p.infraLine["postgres"])
	claim(m.Infra.Broker.Port, "infra.broker.port", p.infraLine["broker"])
	claim(m.Infra.Registry.Port, "infra.registry.port", p.infraLine["registry"])
	for _, n := range names {
		s := m.Services[n]
		if s.Public && s.Port == m.Gateway.Port {
			continue
		}
		claim(s.Port, "services."+n+".port", p.lines[n].port)
	}
}

// ValidName reports whether s can name a project or a service: an RFC 1123
// label starting with a letter, because names become host names, container
// names, database names and directories.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		case r == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

// closest returns the candidate within edit distance 2 of s, if any, for
// "did you mean" hints.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
