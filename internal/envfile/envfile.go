// Package envfile loads an environment's dotenv files into the services'
// environment: `msctl up --env NAME` (default dev) reads, lowest first,
//
//	msctl.yaml env: < .env < .env.NAME < <service dir>/.env < <service dir>/.env.NAME
//
// (the workspace's files beside msctl.yaml, the service's in its path:),
// each layer overriding the one below. A missing file is no layer. Apply
// folds the result into the manifest's Service.Env, which is all the
// runtimes and the Kubernetes generator read, so every runtime gets the same
// environment; Resolve keeps where each variable came from for
// `msctl config env`.
package envfile

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/secrets"
)

// DefaultName is the environment when neither --env nor EnvVar names one.
const DefaultName = "dev"

// EnvVar names the environment when --env is not given.
const EnvVar = "MSCTL_ENV"

// Sources of a variable other than a file:line.
const (
	SourceManifest = manifest.FileName
	SourceMsctl    = "msctl"
)

// MsctlVars are the variables msctl itself sets for every service (see
// the service environment table in docs/ARCHITECTURE.md; with the secrets
// it derives, secrets.IsEnv). A file may not set them: their values are addresses and identities only the runtime
// knows, different per runtime and instance (the chaos proxies sit in
// them), so a file value could neither win without breaking the wiring nor
// lose without misleading whoever wrote it.
var MsctlVars = []string{
	"SERVICE_NAME", "INSTANCE_ID", "HTTP_ADDR", "ADVERTISE_ADDR", "ETCD_ENDPOINTS", "NATS_URL",
	"DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "GATEWAY_ROUTES", "UPSTREAM_PROXIES",
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// CheckName rejects an environment name that cannot be part of a file name.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid environment name %q: use letters, digits, - and _ (e.g. --env staging)", name)
	}
	return nil
}

// Var is one variable of a service's environment and where it came from:
// SourceManifest, SourceMsctl or file:line (the file relative to the
// workspace).
type Var struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// Resolve returns, per service, the variables msctl.yaml and the files of
// environment name set, sorted by name. Every problem of every file comes
// back at once as manifest.Errors.
func Resolve(m *manifest.Manifest, name string) (map[string][]Var, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	r := reader{root: m.Dir(), parsed: map[string][]Var{}}
	workspace := r.layers(m.Dir(), name)
	out := make(map[string][]Var, len(m.Services))
	for _, svcName := range m.ServiceNames() {
		s := m.Services[svcName]
		vars := map[string]Var{}
		for k, v := range s.Env {
			vars[k] = Var{Name: k, Value: v, Source: SourceManifest}
		}
		for _, layer := range append(slices.Clone(workspace), r.layers(s.Dir, name)...) {
			for _, v := range layer {
				vars[v.Name] = v
			}
		}
		list := slices.Collect(maps.Values(vars))
		slices.SortFunc(list, func(a, b Var) int { return cmp.Compare(a.Name, b.Name) })
		out[svcName] = list
	}
	if len(r.errs) > 0 {
		return nil, r.errs
	}
	return out, nil
}

// Apply sets each service's Env to its resolved environment.
func Apply(m *manifest.Manifest, name string) error {
	res, err := Resolve(m, name)
	if err != nil {
		return err
	}
	for svcName, vars := range res {
		env := make(map[string]string, len(vars))
		for _, v := range vars {
			env[v.Name] = v.Value
		}
		m.Services[svcName].Env = env
	}
	return nil
}

// Load loads the manifest at path with environment name applied.
func Load(path, name string) (*manifest.Manifest, error) {
	m, err := manifest.Load(path)
	if err != nil {
		return nil, err
	}
	if err := Apply(m, name); err != nil {
		return nil, err
	}
	return m, nil
}

// reader reads each file once (services may share a directory) and
// collects every problem.
type reader struct {
	root   string
	parsed map[string][]Var
	errs   manifest.Errors
}

// layers returns the variables of dir's .env and .env.<name>, in that
// order.
func (r *reader) layers(dir, name string) [][]Var {
	return [][]Var{r.file(filepath.Join(dir, ".env")), r.file(filepath.Join(dir, ".env."+name))}
}

func (r *reader) file(path string) []Var {
	if vars, ok := r.parsed[path]; ok {
		return vars
	}
	r.parsed[path] = nil
	shown := path
	if rel, err := filepath.Rel(r.root, path); err == nil && filepath.IsLocal(rel) {
		shown = rel
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		r.errs = append(r.errs, &manifest.Error{File: shown, Msg: "cannot read: " + err.Error(), Fix: "make it readable, or remove it"})
		return nil
	}
	entries, err := Parse(shown, data)
	var errs manifest.Errors
	errors.As(err, &errs)
	vars := make([]Var, 0, len(entries))
	for _, e := range entries {
		if slices.Contains(MsctlVars, e.Name) || secrets.IsEnv(e.Name) {
			errs = append(errs, &manifest.Error{File: shown, Line: e.Line,
				Msg: e.Name + " is set by msctl: its value depends on the runtime and the instance",
				Fix: "remove it from the file (msctl gives every service its own " + e.Name + ")"})
			continue
		}
		vars = append(vars, Var{Name: e.Name, Value: e.Value, Source: shown + ":" + strconv.Itoa(e.Line)})
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *manifest.Error) int { return a.Line - b.Line })
		r.errs = append(r.errs, errs...)
		return nil
	}
	r.parsed[path] = vars
	return vars
}
