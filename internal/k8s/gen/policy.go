package gen

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Names of the namespace-wide policies.
const (
	DefaultDenyPolicy = "default-deny"
	DNSPolicy         = "allow-dns"
)

// policies returns the NetworkPolicies: everything is denied, then each
// component is allowed exactly its edges. Traffic needs both the sender's
// egress and the receiver's ingress, so every edge appears on both ends.
func (g *generator) policies() []Object {
	all := &metav1.LabelSelector{}
	objs := []Object{
		g.policy(DefaultDenyPolicy, "namespace", all, nil, nil),
		// DNS may live anywhere (kube-system, a node-local cache), so only
		// the port is pinned.
		g.policy(DNSPolicy, "namespace", all, nil, []networkingv1.NetworkPolicyEgressRule{{
			Ports: []networkingv1.NetworkPolicyPort{udp(53), tcp(53)},
		}}),
	}
	services := g.services()
	var names, dbNames []string
	dependents := map[string][]string{}
	for _, s := range services {
		names = append(names, s.Name)
		if s.Database {
			dbNames = append(dbNames, s.Name)
		}
		for _, d := range s.Depends {
			dependents[d] = append(dependents[d], s.Name)
		}
	}
	if len(dbNames) > 0 {
		objs = append(objs, g.policy(postgresName, ComponentInfra, g.podsOf(postgresName),
			append([]networkingv1.NetworkPolicyIngressRule{g.from(dbNames, PostgresPort)}, g.fromChaos(postgresName, PostgresPort)...), nil))
	}
	for _, c := range []struct {
		name         string
		client, peer int32
	}{{natsName, NATSPort, natsClusterPort}, {etcdName, EtcdPort, etcdPeerPort}} {
		peers := []networkingv1.NetworkPolicyPeer{{PodSelector: g.podsOf(c.name)}}
		ingress := []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: []networkingv1.NetworkPolicyPort{tcp(c.peer)}}}
		if len(names) > 0 {
			ingress = append(ingress, g.from(names, c.client))
		}
		ingress = append(ingress, g.fromChaos(c.name, c.client)...)
		objs = append(objs, g.policy(c.name, ComponentInfra, g.podsOf(c.name), ingress,
			[]networkingv1.NetworkPolicyEgressRule{{To: peers, Ports: []networkingv1.NetworkPolicyPort{tcp(c.peer)}}}))
	}
	if g.spec.CollectorImage != "" {
		// Everything may send telemetry; an empty From also admits the API
		// server proxying the agent's reads.
		objs = append(objs, g.policy(CollectorName, ComponentInfra, g.podsOf(CollectorName),
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(CollectorPort)}}}, nil))
	}
	if g.spec.Chaos != nil {
		objs = append(objs, g.chaosPolicy())
	}
	for _, s := range services {
		objs = append(objs, g.servicePolicy(s, dependents[s.Name]))
	}
	return objs
}

// servicePolicy admits a service's dependents (anyone, for the public
// gateway) and lets it reach its own dependencies, the broker, the
// registry, the collector, and Postgres only when it has a database; with
// a chaos proxy it also reaches the proxy's ports of its edges, and admits
// the proxy. Its selector covers the service's database Job too, which
// shares its name.
func (g *generator) servicePolicy(s ServiceSpec, dependents []string) Object {
	var ingress []networkingv1.NetworkPolicyIngressRule
	switch {
	case s.Public:
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{tcp(ServicePort)}})
	case len(dependents) > 0:
		ingress = append(ingress, g.from(dependents, ServicePort))
	}
	if !s.Public {
		ingress = append(ingress, g.fromChaos(s.Name, ServicePort)...)
	}
	egress := []networkingv1.NetworkPolicyEgressRule{
		g.to(g.podsOf(natsName), NATSPort),
		g.to(g.podsOf(etcdName), EtcdPort),
	}
	if s.Database {
		egress = append(egress, g.to(g.podsOf(postgresName), PostgresPort))
	}
	if g.spec.CollectorImage != "" {
		egress = append(egress, g.to(g.podsOf(CollectorName), CollectorPort))
	}
	if len(s.Depends) > 0 {
		egress = append(egress, g.to(g.named(s.Depends), ServicePort))
	}
	egress = append(egress, g.toChaos(s.Name)...)
	return g.policy(s.Name, ComponentService, g.named([]string{s.Name}), ingress, egress)
}

func (g *generator) policy(name, component string, pods *metav1.LabelSelector,
	ingress []networkingv1.NetworkPolicyIngressRule, egress []networkingv1.NetworkPolicyEgressRule,
) Object {
	return &networkingv1.NetworkPolicy{TypeMeta: typePolicy, ObjectMeta: g.meta(name, component), Spec: networkingv1.NetworkPolicySpec{
		PodSelector: *pods,
		// Both types always: an empty rule list then means "deny", never
		// "this policy does not restrict that direction".
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress:     ingress,
		Egress:      egress,
	}}
}

// podsOf selects the pods of one infra component.
func (g *generator) podsOf(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: g.selector(name, ComponentInfra)}
}

// named selects the pods of the given services, whatever their component:
// a service's pods and its database Job's.
func (g *generator) named(names []string) *metav1.LabelSelector {
	return &metav1.LabelSelector{
		MatchLabels: map[string]string{LabelPartOf: PartOf(g.spec.Project)},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: LabelName, Operator: metav1.LabelSelectorOpIn, Values: slices.Sorted(slices.Values(names)),
		}},
	}
}

func (g *generator) from(services []string, p int32) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{
		From:  []networkingv1.NetworkPolicyPeer{{PodSelector: g.named(services)}},
		Ports: []networkingv1.NetworkPolicyPort{tcp(p)},
	}
}

func (g *generator) to(pods *metav1.LabelSelector, p int32) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{
		To:    []networkingv1.NetworkPolicyPeer{{PodSelector: pods}},
		Ports: []networkingv1.NetworkPolicyPort{tcp(p)},
	}
}

func tcp(p int32) networkingv1.NetworkPolicyPort { return netPort(corev1.ProtocolTCP, p) }
func udp(p int32) networkingv1.NetworkPolicyPort { return netPort(corev1.ProtocolUDP, p) }

func netPort(proto corev1.Protocol, p int32) networkingv1.NetworkPolicyPort {
	port := intstr.FromInt32(p)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port}
}
