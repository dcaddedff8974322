package gen

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// ChaosName is the chaos proxy's Deployment, Service and NetworkPolicy.
const ChaosName = "msctl-chaos"

// Chaos is the kubernetes runtime's chaos proxy (`msctl chaos`): msctl
// itself in a pod in front of every edge, services dialling it instead of
// their dependencies. Only the runtime asks for it: an exported base is
// for production and has none.
type Chaos struct {
	Image string
	// Args are the container's arguments (the image's entrypoint is msctl);
	// they name the edges and their upstreams (ChaosUpstream).
	Args []string
	// ControlPort is the control API's, reached through a port-forward.
	ControlPort int
	Edges       []ChaosEdge
}

// ChaosEdge is one edge: service From dials Port of the proxy for To, a
// service or postgres, nats, etcd.
type ChaosEdge struct {
	From, To string
	Port     int
}

// ChaosUpstream is where the proxy dials for to: the Service of the infra
// component or of the service.
func ChaosUpstream(to string) string {
	return to + ":" + strconv.Itoa(int(chaosPort(to)))
}

// chaosPort is the port a component listens on behind the proxy.
func chaosPort(to string) int32 {
	p, ok := map[string]int32{postgresName: PostgresPort, natsName: NATSPort, etcdName: EtcdPort}[to]
	if !ok {
		return ServicePort
	}
	return p
}

func (g *generator) chaos() []Object {
	c := g.spec.Chaos
	if c == nil {
		return nil
	}
	ports := []corev1.ContainerPort{port("control", int32(c.ControlPort))}
	svcPorts := []corev1.ServicePort{servicePort("control", int32(c.ControlPort))}
	for _, e := range c.Edges {
		name := fmt.Sprintf("edge-%d", e.Port)
		ports = append(ports, port(name, int32(e.Port)))
		svcPorts = append(svcPorts, servicePort(name, int32(e.Port)))
	}
	return []Object{
		g.msctlDeployment(ChaosName, c.Image, c.Args, ports...),
		g.clientService(ChaosName, svcPorts...),
	}
}

// chaosPolicy admits each service to its edges' ports and anyone to the
// control port (an empty From also admits the port-forward), and lets the
// proxy reach every edge's target.
func (g *generator) chaosPolicy() Object {
	c := g.spec.Chaos
	ingress := []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(int32(c.ControlPort))}}}
	targets := map[string]bool{}
	for _, e := range c.Edges {
		ingress = append(ingress, g.from([]string{e.From}, int32(e.Port)))
		targets[e.To] = true
	}
	var egress []networkingv1.NetworkPolicyEgressRule
	for _, infra := range []string{natsName, etcdName, postgresName} {
		if targets[infra] {
			egress = append(egress, g.to(g.podsOf(infra), chaosPort(infra)))
			delete(targets, infra)
		}
	}
	if len(targets) > 0 {
		egress = append(egress, g.to(g.named(slices.Sorted(maps.Keys(targets))), ServicePort))
	}
	return g.policy(ChaosName, ComponentInfra, g.podsOf(ChaosName), ingress, egress)
}

// fromChaos admits the chaos proxy to port of a component some edge leads
// to: nil without a proxy or such an edge.
func (g *generator) fromChaos(to string, port int32) []networkingv1.NetworkPolicyIngressRule {
	c := g.spec.Chaos
	if c == nil || !slices.ContainsFunc(c.Edges, func(e ChaosEdge) bool { return e.To == to }) {
		return nil
	}
	return []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{{PodSelector: g.podsOf(ChaosName)}},
		Ports: []networkingv1.NetworkPolicyPort{tcp(port)},
	}}
}

// toChaos lets service from reach its edges' ports on the proxy.
func (g *generator) toChaos(from string) []networkingv1.NetworkPolicyEgressRule {
	c := g.spec.Chaos
	if c == nil {
		return nil
	}
	var ports []networkingv1.NetworkPolicyPort
	for _, e := range c.Edges {
		if e.From == from {
			ports = append(ports, tcp(int32(e.Port)))
		}
	}
	if len(ports) == 0 {
		return nil
	}
	return []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{{PodSelector: g.podsOf(ChaosName)}},
		Ports: ports,
	}}
}
