package gen

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/secrets"
)

// DefaultTag is the service image tag when the caller has no build hash.
const DefaultTag = "latest"

// Options are what FromManifest cannot read from msctl.yaml.
type Options struct {
	// Tags maps a service to its image tag (the runtime's content hash);
	// services missing from it get DefaultTag.
	Tags map[string]string
	// Password returns the password of a service's database role, or with
	// PostgresRole the superuser's. It is called only when a service has a
	// database. The runtime keeps them in the cluster across runs; export
	// draws new ones with NewPassword.
	Password func(role string) (string, error)
	// CollectorImage and CollectorArgs set the in-cluster collector.
	CollectorImage string
	CollectorArgs  []string
	// Secret is the workspace secret (internal/secrets) services' secrets
	// derive from; nil gives them none.
	Secret []byte
}

// PostgresRole is the role Options.Password is asked for the superuser's
// password.
const PostgresRole = "postgres"

// ServiceImage names a service's image as the runtime builds it, under
// registry (kubernetes.registry in msctl.yaml) when the cluster pulls it
// from one.
func ServiceImage(registry, project, service, tag string) string {
	img := "msctl/" + project + "-" + service + ":" + tag
	if registry != "" {
		img = registry + "/" + img
	}
	return img
}

// NewPassword returns a random password that needs no escaping in a URL.
func NewPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// FromManifest translates msctl.yaml into a Spec: the one place that
// does, so that the runtime and export agree.
func FromManifest(m *manifest.Manifest, opts Options) (Spec, error) {
	ns := m.Kubernetes.Namespace
	if ns == "" {
		ns = DefaultNamespace(m.Project)
	}
	spec := Spec{
		Project:         m.Project,
		Namespace:       ns,
		Postgres:        Infra{Image: m.Infra.Postgres.Ref(), Replicas: m.Infra.Postgres.Replicas},
		Broker:          Infra{Image: m.Infra.Broker.Ref(), Replicas: m.Infra.Broker.Replicas},
		Registry:        Infra{Image: m.Infra.Registry.Ref(), Replicas: m.Infra.Registry.Replicas},
		GatewayRoutes:   m.GatewayRoutes(),
		CollectorImage:  opts.CollectorImage,
		CollectorArgs:   opts.CollectorArgs,
		ShutdownTimeout: DefaultShutdownTimeout,
	}
	password := func(role string) (string, error) {
		if opts.Password == nil {
			return "", fmt.Errorf("no password for role %s", role)
		}
		return opts.Password(role)
	}
	for _, name := range m.ServiceNames() {
		s := m.Services[name]
		tag := opts.Tags[name]
		if tag == "" {
			tag = DefaultTag
		}
		svc := ServiceSpec{
			Name:     name,
			Image:    ServiceImage(m.Kubernetes.Registry, m.Project, name, tag),
			Replicas: s.Replicas,
			Health:   s.Health,
			Public:   s.Public,
			Database: s.Database,
			Depends:  s.DependsOn,
			Env:      s.Env,
		}
		if opts.Secret != nil {
			sec, err := secrets.Env(opts.Secret, name, s.Secrets)
			if err != nil {
				return Spec{}, err
			}
			svc.Env = maps.Clone(s.Env)
			if svc.Env == nil {
				svc.Env = map[string]string{}
			}
			maps.Copy(svc.Env, sec)
		}
		if v, ok := s.Env["SHUTDOWN_TIMEOUT"]; ok {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return Spec{}, fmt.Errorf("service %s: env SHUTDOWN_TIMEOUT %q is not a positive duration (e.g. 10s)", name, v)
			}
			svc.ShutdownTimeout = d
		}
		if a := s.Autoscale; a != nil {
			svc.Autoscale = &Autoscale{Min: a.Min, Max: a.Max, CPU: a.CPU}
		}
		if s.Database {
			pw, err := password(name)
			if err != nil {
				return Spec{}, fmt.Errorf("service %s: database password: %w", name, err)
			}
			svc.DatabasePassword = pw
			if spec.PostgresPassword == "" {
				if spec.PostgresPassword, err = password(PostgresRole); err != nil {
					return Spec{}, fmt.Errorf("postgres password: %w", err)
				}
			}
		}
		spec.Services = append(spec.Services, svc)
	}
	return spec, nil
}
