package gen

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

var chaosEdges = []ChaosEdge{
	{From: "gateway", To: "orders", Port: 10005},
	{From: "orders", To: natsName, Port: 10008},
	{From: "orders", To: postgresName, Port: 10010},
	{From: "users", To: etcdName, Port: 10001},
}

// chaosObjects is the shop with the runtime's chaos proxy on chaosEdges.
func chaosObjects(t *testing.T) []Object {
	t.Helper()
	m := loadShop(t)
	spec, err := FromManifest(m, Options{Password: func(role string) (string, error) { return "pw-" + role, nil }})
	if err != nil {
		t.Fatal(err)
	}
	spec.Chaos = &Chaos{Image: "msctl/collector:test", Args: []string{"agent", "chaos-proxy"}, ControlPort: 7070, Edges: chaosEdges}
	objs, err := Objects(spec)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestChaosProxyObjects(t *testing.T) {
	for _, o := range shopObjects(t, nil) {
		if strings.Contains(o.GetName(), ChaosName) {
			t.Errorf("without Spec.Chaos the objects include %s %s", o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
		}
	}
	objs := chaosObjects(t)
	d := find[*appsv1.Deployment](t, objs, ChaosName)
	if c := d.Spec.Template.Spec.Containers[0]; c.Image != "msctl/collector:test" || !slices.Equal(c.Args, []string{"agent", "chaos-proxy"}) {
		t.Errorf("chaos container runs %s %v", c.Image, c.Args)
	}
	svc := find[*corev1.Service](t, objs, ChaosName)
	var ports []int32
	for _, p := range svc.Spec.Ports {
		ports = append(ports, p.Port)
		// The Service targets ports by name: an undeclared one gets no
		// traffic.
		declared := slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool {
			return cp.Name == p.TargetPort.StrVal && cp.ContainerPort == p.Port
		})
		if !declared {
			t.Errorf("chaos Service port %d targets %q, which the container does not declare", p.Port, p.TargetPort.String())
		}
	}
	if want := []int32{7070, 10005, 10008, 10010, 10001}; !slices.Equal(ports, want) {
		t.Errorf("chaos Service ports %v, want %v", ports, want)
	}
	if got := ChaosUpstream("orders") + " " + ChaosUpstream(postgresName) + " " + ChaosUpstream(natsName); got != "orders:8080 postgres:5432 nats:4222" {
		t.Errorf("upstreams: %s", got)
	}
}

// Each service reaches only its own edges' ports on the proxy, and the
// proxy reaches exactly the edges' targets.
func TestChaosProxyNetworkPolicies(t *testing.T) {
	objs := chaosObjects(t)
	var pols []*networkingv1.NetworkPolicy
	for _, o := range objs {
		if p, ok := o.(*networkingv1.NetworkPolicy); ok {
			pols = append(pols, p)
		}
	}
	tmpls := templates(objs)
	tcp := corev1.ProtocolTCP
	for _, tt := range []struct {
		from, to string
		port     int
		want     bool
	}{
		{"gateway", ChaosName, 10005, true},
		{"users", ChaosName, 10005, false},
		{"orders", ChaosName, 10008, true},
		{"orders", ChaosName, 10010, true},
		{"users", ChaosName, 10001, true},
		{"outside", ChaosName, 7070, true},
		{ChaosName, "orders", 8080, true},
		{ChaosName, "payments", 8080, false},
		{ChaosName, postgresName, 5432, true},
		{ChaosName, natsName, 4222, true},
		{ChaosName, etcdName, 2379, true},
		{ChaosName, "outside", 443, false},
	} {
		from, to := peer{outside: true}, peer{outside: true}
		if tt.from != "outside" {
			from = peer{labels: tmpls[tt.from].Labels}
		}
		if tt.to != "outside" {
			to = peer{labels: tmpls[tt.to].Labels}
		}
		if got := allowed(t, pols, from, to, tcp, tt.port); got != tt.want {
			t.Errorf("%s -> %s %d allowed = %v, want %v", tt.from, tt.to, tt.port, got, tt.want)
		}
	}
}
