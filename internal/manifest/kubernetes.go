package manifest

import (
	"fmt"
	"strings"
)

// Kubernetes holds the settings only the kubernetes runtime and
// `msctl export k8s` read. Every field is optional.
type Kubernetes struct {
	// Namespace replaces the default msctl-<project>.
	Namespace string
	// Context is the kubeconfig context to use instead of the current one.
	Context string
	// Registry is the image prefix (host[/path]) a remote cluster pulls
	// service images from; empty for a local cluster that has them loaded.
	Registry string
}

// Autoscale asks for a HorizontalPodAutoscaler on a service.
type Autoscale struct {
	Min, Max int
	// CPU is the target average CPU utilisation in percent of the request.
	CPU int
}

// DefaultAutoscaleCPU is the CPU target when autoscale: leaves it out.
const DefaultAutoscaleCPU = 80

var (
	kubernetesKeys = []string{"namespace", "context", "registry"}
	autoscaleKeys  = []string{"min", "max", "cpu"}
)

// kubernetes reads the kubernetes: section and defaults the infra replicas,
// which only the kubernetes runtime can raise above one.
func (p *parser) kubernetes(fields map[string]keyVal, m *Manifest) {
	for _, c := range []*Component{&m.Infra.Postgres, &m.Infra.Broker, &m.Infra.Registry} {
		if c.Replicas == 0 {
			c.Replicas = 1
		}
	}
	kv, ok := fields["kubernetes"]
	if !ok {
		return
	}
	kf := p.mapping(kv.val, "kubernetes", "kubernetes.", kubernetesKeys)
	if v, ok := kf["namespace"]; ok {
		m.Kubernetes.Namespace = p.str(v.val, "kubernetes.namespace")
		if ns := m.Kubernetes.Namespace; ns != "" && !ValidName(ns) {
			p.errorf(v.val, "use lower-case letters, digits and '-', starting with a letter, at most 63 characters (e.g. shop-dev)",
				"kubernetes.namespace %q is not a valid namespace name", ns)
		}
	}
	if v, ok := kf["context"]; ok {
		m.Kubernetes.Context = p.str(v.val, "kubernetes.context")
	}
	if v, ok := kf["registry"]; ok {
		reg := p.str(v.val, "kubernetes.registry")
		if strings.Contains(reg, "://") || strings.ContainsAny(reg, " \t") || strings.HasSuffix(reg, "/") {
			p.errorf(v.val, "write the image prefix without a scheme or trailing slash, e.g. registry: registry.example.com/team",
				"kubernetes.registry %q is not an image prefix", reg)
		}
		m.Kubernetes.Registry = reg
	}
}

// componentReplicas reads infra.<name>.replicas: NATS and etcd run as one
// node or as a three-node cluster (quorum needs an odd count, and five
// nodes on a development cluster buy nothing); Postgres is one server.
func (p *parser) componentReplicas(name string, cf map[string]keyVal, c *Component) {
	v, ok := cf["replicas"]
	if !ok {
		return
	}
	where := "infra." + name + ".replicas"
	if name == "postgres" {
		p.errorf(v.key, "remove replicas: from infra.postgres; msctl runs one Postgres server", "%s is not supported", where)
		return
	}
	r, ok := p.integer(v.val, where)
	if !ok {
		return
	}
	if r != 1 && r != 3 {
		p.errorf(v.val, "set replicas: 1 (one node) or 3 (a three-node cluster)", "%s is %d, must be 1 or 3", where, r)
		return
	}
	c.Replicas = r
}

// autoscale reads services.<name>.autoscale: {min, max, cpu}.
func (p *parser) autoscale(f map[string]keyVal, where string) *Autoscale {
	kv, ok := f["autoscale"]
	if !ok || isNull(kv.val) {
		return nil
	}
	af := p.mapping(kv.val, where+".autoscale", where+".autoscale.", autoscaleKeys)
	a := &Autoscale{Min: 1, CPU: DefaultAutoscaleCPU}
	num := func(key string, dst *int, lo, hi int) {
		v, ok := af[key]
		if !ok {
			return
		}
		n, ok := p.integer(v.val, where+".autoscale."+key)
		if !ok {
			return
		}
		if n < lo || n > hi {
			p.errorf(v.val, fmt.Sprintf("use a number between %d and %d", lo, hi), "%s.autoscale.%s is %d, out of range", where, key, n)
			return
		}
		*dst = n
	}
	num("min", &a.Min, 1, 1000)
	num("max", &a.Max, 1, 1000)
	num("cpu", &a.CPU, 1, 100)
	if _, ok := af["max"]; !ok {
		p.errorf(kv.val, "add max:, the most replicas the autoscaler may run, e.g. autoscale: {min: 2, max: 5}", "%s.autoscale needs max", where)
		return nil
	}
	if a.Max < a.Min {
		p.errorf(af["max"].val, "set max to at least min", "%s.autoscale.max %d is below min %d", where, a.Max, a.Min)
		return nil
	}
	return a
}
