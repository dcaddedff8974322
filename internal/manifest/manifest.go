// Package manifest loads and validates msctl.yaml, the workspace manifest.
//
// Every command loads the manifest through Load, so a workspace is checked the
// same way before anything acts on it. Parsing goes through yaml.v3's Node API
// rather than struct decoding so that every problem can name the file and line
// it comes from, and so that unknown keys are reported instead of ignored.
package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// FileName is the name Find looks for.
const FileName = "msctl.yaml"

// Languages a service may be written in.
const (
	LangGo   = "go"
	LangNode = "node"
)

// Route access levels: whether the gateway requires a JWT.
const (
	AccessPublic = "public"
	AccessAuth   = "auth"
)

// Defaults applied by Load.
const (
	DefaultGatewayPort = 8080
	DefaultHealth      = "/readyz"
	DefaultReplicas    = 1

	DefaultPostgresImage   = "postgres"
	DefaultPostgresVersion = "15"
	DefaultBrokerImage     = "nats"
	DefaultBrokerVersion   = "2.15"
	DefaultRegistryImage   = "bitnami/etcd"
	DefaultRegistryVersion = "3.5"
)

// Manifest is a loaded, validated msctl.yaml.
type Manifest struct {
	Project  string
	Gateway  Gateway
	Infra    Infra
	Services map[string]*Service
	// Kubernetes is read by the kubernetes runtime and export k8s only.
	Kubernetes Kubernetes

	// path is the absolute path of the file it was loaded from.
	path string
}

// Gateway is the public entry point of the workspace.
type Gateway struct {
	// Port is the only fixed host port; the public service listens on it.
	Port int
}

// Infra holds the shared infrastructure components.
type Infra struct {
	Postgres Component
	Broker   Component
	Registry Component
}

// Component is one infra component run from an image (docker runtime) or
// embedded/host binaries (local runtime).
type Component struct {
	Image   string
	Version string
	// Port is the host port; 0 means a free one is chosen at start.
	Port int
	// Replicas is the cluster size on kubernetes (1 or 3); other runtimes
	// run one node.
	Replicas int
}

// Ref is the image reference, image:version.
func (c Component) Ref() string { return c.Image + ":" + c.Version }

// Service is one service of the workspace.
type Service struct {
	Name string
	// Path is the service directory as written in the manifest, relative to
	// the workspace root.
	Path string
	// Dir is the absolute service directory.
	Dir      string
	Language string
	// Port is the host port; 0 means a free one is chosen at start.
	Port      int
	Public    bool
	DependsOn []string
	Database  bool
	Health    string
	Env       map[string]string
	// Secrets names the shared secrets the service receives, each derived
	// from the workspace secret (internal/secrets).
	Secrets  []string
	Replicas int
	// Routes maps gateway path prefixes this service serves to their access,
	// AccessPublic or AccessAuth.
	Routes map[string]string
	// Autoscale, when set, gives the service a HorizontalPodAutoscaler on
	// kubernetes.
	Autoscale *Autoscale
	// Line is where the service is declared, for messages about it.
	Line int
}

// Path returns the absolute path of the manifest file.
func (m *Manifest) Path() string { return m.path }

// Dir returns the workspace root: the directory holding the manifest.
func (m *Manifest) Dir() string { return filepath.Dir(m.path) }

// ServiceNames returns the service names, sorted.
func (m *Manifest) ServiceNames() []string {
	names := make([]string, 0, len(m.Services))
	for n := range m.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Public returns the service listening on the gateway port, or nil.
func (m *Manifest) Public() *Service {
	for _, n := range m.ServiceNames() {
		if m.Services[n].Public {
			return m.Services[n]
		}
	}
	return nil
}

// GatewayRoutes renders every service's routes in the form the gateway reads
// from GATEWAY_ROUTES: "/prefix=service:access,..." sorted by prefix.
func (m *Manifest) GatewayRoutes() string {
	var routes []string
	for _, n := range m.ServiceNames() {
		for prefix, access := range m.Services[n].Routes {
			routes = append(routes, prefix+"="+n+":"+access)
		}
	}
	sort.Strings(routes)
	return strings.Join(routes, ",")
}

// Order returns the services in dependency levels: every service of a level
// depends only on services of earlier levels, so each level can start in
// parallel once the previous one is ready. Names within a level are sorted.
func (m *Manifest) Order() ([][]string, error) {
	indeg := make(map[string]int, len(m.Services))
	dependents := make(map[string][]string, len(m.Services))
	for name, s := range m.Services {
		indeg[name] += 0
		for _, d := range s.DependsOn {
			if _, ok := m.Services[d]; !ok {
				return nil, fmt.Errorf("service %q depends on unknown service %q", name, d)
			}
			indeg[name]++
			dependents[d] = append(dependents[d], name)
		}
	}
	var levels [][]string
	var level []string
	for name, n := range indeg {
		if n == 0 {
			level = append(level, name)
		}
	}
	done := 0
	for len(level) > 0 {
		sort.Strings(level)
		levels = append(levels, level)
		done += len(level)
		var next []string
		for _, name := range level {
			for _, dep := range dependents[name] {
				indeg[dep]--
				if indeg[dep] == 0 {
					next = append(next, dep)
				}
			}
		}
		level = next
	}
	if done != len(m.Services) {
		return nil, errors.New("services have a dependency cycle")
	}
	return levels, nil
}

// ErrNotFound is wrapped by Find's error when no manifest exists.
var ErrNotFound = errors.New("no " + FileName + " found")

// Find walks up from startDir to the filesystem root and returns the path of
// the first msctl.yaml it meets.
func Find(startDir string) (string, error) {
	dir, err := filepath.Abs(startDir)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", FileName, err)
	}
	for {
		p := filepath.Join(dir, FileName)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", &Error{
				Msg: fmt.Sprintf("no %s in %s or any parent directory", FileName, startDir),
				Fix: "run msctl inside a workspace, or pass the manifest with --file PATH",
				err: ErrNotFound,
			}
		}
		dir = parent
	}
}

// Error is one problem with a manifest, located in its file.
type Error struct {
	File string
	Line int // 0 when the problem has no line (unreadable file)
	Msg  string
	Fix  string

	err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString("\n\tfix: ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.err }

// Errors is every problem found in one manifest, in file order. Load returns
// it whenever validation fails, so a user fixes everything in one round.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find the first *Error.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int { return a.Line - b.Line })
	return es
}
