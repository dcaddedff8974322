// Package gen generates the Kubernetes objects of a workspace: the one
// generator behind both the kubernetes runtime, which applies them, and
// `msctl export k8s`, which writes them as a kustomize base. What the runtime
// tests is therefore what a user ships.
//
// The generator is a pure function of a Spec: no cluster access, no clock,
// no randomness (passwords come in the Spec), so its output is golden-tested.
package gen

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Object is one generated Kubernetes object: typed (k8s.io/api), with its
// TypeMeta set so that it serialises and applies on its own.
type Object interface {
	runtime.Object
	metav1.Object
}

// Spec is everything the generator needs, explicit so that runtimes never
// read the manifest. FromManifest builds one from msctl.yaml.
type Spec struct {
	Project   string
	Namespace string // msctl-<project> unless msctl.yaml says otherwise
	Services  []ServiceSpec

	Postgres Infra
	Broker   Infra
	Registry Infra
	// PostgresPassword is the superuser's; only Postgres and the
	// per-service provisioning Jobs see it.
	PostgresPassword string

	// GatewayRoutes is GATEWAY_ROUTES for the public service.
	GatewayRoutes string

	// CollectorImage, when set, adds the in-cluster telemetry collector
	// (Deployment and Service msctl-collector) that services export OTLP to.
	CollectorImage string
	// CollectorArgs are the collector container's arguments (the image's
	// entrypoint runs them).
	CollectorArgs []string

	// Chaos, when set, adds the chaos proxy (chaos.go); the kubernetes
	// runtime sets it, msctl export never does.
	Chaos *Chaos

	// ShutdownTimeout is SHUTDOWN_TIMEOUT of a service that does not set
	// its own; DefaultShutdownTimeout when zero.
	ShutdownTimeout time.Duration
}

// Infra is one infra component: its image and node count.
type Infra struct {
	Image    string
	Replicas int // 1, or 3 for a NATS or etcd cluster
}

// ServiceSpec is one service of the workspace.
type ServiceSpec struct {
	Name     string
	Image    string
	Replicas int
	// Health is the readiness path; liveness and startup use /healthz.
	Health string
	Public bool // the gateway: reachable from outside the namespace
	// Database gives the service its own database, role and Secret.
	Database bool
	// DatabasePassword is the service role's password, set with Database.
	DatabasePassword string
	Depends          []string
	Env              map[string]string
	// ShutdownTimeout overrides Spec.ShutdownTimeout for this service.
	ShutdownTimeout time.Duration
	Autoscale       *Autoscale
}

// Autoscale is a HorizontalPodAutoscaler on CPU.
type Autoscale struct {
	Min, Max int
	CPU      int // target average utilisation, percent of the request
}

// Ports and names every runtime-facing piece agrees on.
const (
	// ServicePort is where every service listens in its pod (HTTP_ADDR).
	ServicePort = 8080
	// PostgresPort, NATSPort and EtcdPort are the client ports of the infra
	// Services, named like the runtime's components.
	PostgresPort = 5432
	NATSPort     = 4222
	EtcdPort     = 2379
	// CollectorName is the collector's Deployment and Service; CollectorPort
	// its OTLP/HTTP port.
	CollectorName = "msctl-collector"
	CollectorPort = 4318

	// DefaultShutdownTimeout is the kit's default SHUTDOWN_TIMEOUT.
	DefaultShutdownTimeout = 10 * time.Second
	// LeaveDelay is how long a deleted service pod keeps serving before
	// its SIGTERM (a preStop sleep), so that connections kube-proxy still
	// sends it find it up; the termination grace includes it. On the test
	// cluster kube-proxy programmed 99% of endpoint changes within 5 s
	// (kubeproxy_network_programming_duration_seconds), half within 2 s.
	LeaveDelay = 5 * time.Second
	// shutdownMargin is added to the termination grace so that the kubelet
	// never kills a service still draining within its SHUTDOWN_TIMEOUT.
	shutdownMargin = 5 * time.Second
)

// Label keys of the recommended Kubernetes label set.
const (
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelName      = "app.kubernetes.io/name"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelComponent tells a service's own pods (component "service") from
	// its database provisioning Job's, which share its name label so that
	// the service's NetworkPolicy covers both.
	LabelComponent = "app.kubernetes.io/component"
	ManagedBy      = "msctl"
)

// Component values of LabelComponent.
const (
	ComponentService = "service"
	ComponentInfra   = "infra"
	ComponentDBInit  = "database-init"
)

// PartOf is the part-of label value of a project's objects.
func PartOf(project string) string { return "msctl-" + project }

// DefaultNamespace is the namespace of a project when msctl.yaml names none.
func DefaultNamespace(project string) string { return "msctl-" + project }

// Objects returns every object of the workspace in a stable order: the
// namespace, secrets and config maps, infra, services, then policies.
func Objects(spec Spec) ([]Object, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	g := &generator{spec: spec}
	objs := []Object{g.namespace()}
	objs = append(objs, g.secrets()...)
	objs = append(objs, g.natsConfig())
	objs = append(objs, g.postgres()...)
	objs = append(objs, g.nats()...)
	objs = append(objs, g.etcd()...)
	objs = append(objs, g.collector()...)
	objs = append(objs, g.chaos()...)
	for _, s := range g.services() {
		objs = append(objs, g.service(s)...)
	}
	objs = append(objs, g.policies()...)
	return objs, nil
}

func (s Spec) validate() error {
	var errs []error
	if s.Project == "" || s.Namespace == "" {
		errs = append(errs, errors.New("project and namespace are required"))
	}
	for _, in := range []struct {
		name string
		c    Infra
	}{{"postgres", s.Postgres}, {"broker", s.Broker}, {"registry", s.Registry}} {
		if in.c.Image == "" {
			errs = append(errs, fmt.Errorf("%s image is required", in.name))
		}
		if in.c.Replicas != 1 && (in.c.Replicas != 3 || in.name == "postgres") {
			errs = append(errs, fmt.Errorf("%s replicas %d is not supported", in.name, in.c.Replicas))
		}
	}
	names := map[string]bool{}
	for _, svc := range s.Services {
		names[svc.Name] = true
	}
	for _, svc := range s.Services {
		switch {
		case svc.Image == "":
			errs = append(errs, fmt.Errorf("service %s: image is required", svc.Name))
		case svc.Replicas < 1:
			errs = append(errs, fmt.Errorf("service %s: replicas %d, need at least 1", svc.Name, svc.Replicas))
		case svc.Database && (svc.DatabasePassword == "" || s.PostgresPassword == ""):
			errs = append(errs, fmt.Errorf("service %s: a database needs its password and the Postgres password", svc.Name))
		case slices.Contains(reserved, svc.Name):
			errs = append(errs, fmt.Errorf("service %s: the name is taken by an infra component", svc.Name))
		}
		for _, d := range svc.Depends {
			if !names[d] {
				errs = append(errs, fmt.Errorf("service %s depends on unknown service %s", svc.Name, d))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubernetes spec: %w", err)
	}
	return nil
}

// reserved are the names of infra objects a service's own objects would
// collide with.
var reserved = []string{postgresName, natsName, etcdName, natsName + peersSuffix, etcdName + peersSuffix, CollectorName, ChaosName}

type generator struct{ spec Spec }

// services returns the services sorted by name, for a stable order whatever
// order the caller built them in.
func (g *generator) services() []ServiceSpec {
	s := slices.Clone(g.spec.Services)
	slices.SortFunc(s, func(a, b ServiceSpec) int { return cmp.Compare(a.Name, b.Name) })
	return s
}

// labels is the label set of one component's objects.
func (g *generator) labels(name, component string) map[string]string {
	return map[string]string{
		LabelPartOf:    PartOf(g.spec.Project),
		LabelName:      name,
		LabelManagedBy: ManagedBy,
		LabelComponent: component,
	}
}

// selector picks a component's pods; it is immutable on workloads, so it
// holds only what never changes.
func (g *generator) selector(name, component string) map[string]string {
	return map[string]string{LabelPartOf: PartOf(g.spec.Project), LabelName: name, LabelComponent: component}
}

func (g *generator) meta(name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: g.spec.Namespace, Labels: g.labels(name, component)}
}
