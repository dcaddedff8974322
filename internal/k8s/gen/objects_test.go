package gen

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/msctl/msctl/internal/manifest"
)

// templates returns every pod template of objs by the name of the object
// that holds it.
func templates(objs []Object) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch w := o.(type) {
		case *appsv1.Deployment:
			out[w.Name] = w.Spec.Template
		case *appsv1.StatefulSet:
			out[w.Name] = w.Spec.Template
		case *batchv1.Job:
			out[w.Name] = w.Spec.Template
		}
	}
	return out
}

func find[T Object](t *testing.T, objs []Object, name string) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok && o.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %s", zero, name)
	return zero
}

func TestSecurityContexts(t *testing.T) {
	for name, tmpl := range templates(shopObjects(t, ha)) {
		for _, c := range slices.Concat(tmpl.Spec.InitContainers, tmpl.Spec.Containers) {
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s/%s: no security context", name, c.Name)
				continue
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s/%s: security context %+v is not hardened", name, c.Name, sc)
			}
			if name == postgresName {
				// Postgres's entrypoint owns PGDATA as root, then drops to
				// postgres: these capabilities and none else.
				if want := []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}; !slices.Equal(sc.Capabilities.Add, want) {
					t.Errorf("postgres adds %v, want %v", sc.Capabilities.Add, want)
				}
				continue
			}
			if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s/%s: runs as root or adds capabilities: %+v", name, c.Name, sc)
			}
		}
		if p := tmpl.Spec; p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a service account token", name)
		}
	}
}

func TestServiceProbesAndGrace(t *testing.T) {
	objs := shopObjects(t, func(m *manifest.Manifest) { m.Services["orders"].Env["SHUTDOWN_TIMEOUT"] = "20s" })
	for name, wantGrace := range map[string]int64{"orders": 30, "users": 20, "gateway": 20} {
		d := find[*appsv1.Deployment](t, objs, name)
		c := d.Spec.Template.Spec.Containers[0]
		for _, p := range []struct {
			what string
			p    *corev1.Probe
			path string
		}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, "/healthz"}} {
			if p.p == nil || p.p.HTTPGet == nil || p.p.HTTPGet.Path != p.path || p.p.HTTPGet.Port.IntValue() != ServicePort {
				t.Errorf("%s %s probe = %+v, want GET %s on %d", name, p.what, p.p, p.path, ServicePort)
			}
		}
		if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != wantGrace {
			t.Errorf("%s terminationGracePeriodSeconds = %v, want %d (leave delay + SHUTDOWN_TIMEOUT + margin)", name, *g, wantGrace)
		}
		if l := c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Sleep == nil || l.PreStop.Sleep.Seconds != int64(LeaveDelay.Seconds()) {
			t.Errorf("%s preStop = %+v, want a sleep of %s (the pod leaves its endpoints before SIGTERM)", name, l, LeaveDelay)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v lack requests or limits", name, c.Resources)
		}
	}
}

func TestServiceEnv(t *testing.T) {
	objs := shopObjects(t, func(m *manifest.Manifest) { m.Services["users"].Env["NATS_URL"] = "nats://elsewhere:4222" })
	env := map[string]corev1.EnvVar{}
	for _, e := range find[*appsv1.Deployment](t, objs, "users").Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	for k, want := range map[string]string{
		"SERVICE_NAME": "users", "HTTP_ADDR": "0.0.0.0:8080", "ADVERTISE_ADDR": "$(POD_IP):8080",
		"ETCD_ENDPOINTS": "http://etcd:2379", "NATS_URL": "nats://elsewhere:4222",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://msctl-collector:4318", "SHUTDOWN_TIMEOUT": "10s",
	} {
		if env[k].Value != want {
			t.Errorf("%s = %q, want %q", k, env[k].Value, want)
		}
	}
	for k, path := range map[string]string{"INSTANCE_ID": "metadata.name", "POD_IP": "status.podIP"} {
		if f := env[k].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != path {
			t.Errorf("%s does not come from %s: %+v", k, path, env[k])
		}
	}
	if s := env["DATABASE_URL"].ValueFrom; s == nil || s.SecretKeyRef == nil || s.SecretKeyRef.Name != "users-db" {
		t.Errorf("DATABASE_URL does not come from users' Secret: %+v", env["DATABASE_URL"])
	}
	if _, ok := env["GATEWAY_ROUTES"]; ok {
		t.Error("users gets GATEWAY_ROUTES, which only the public service reads")
	}
	sec := find[*corev1.Secret](t, objs, "users-db")
	if got := string(sec.Data["url"]); got != "postgres://users:pw-users@postgres:5432/users?sslmode=disable" {
		t.Errorf("users DSN = %q", got)
	}
}

// TestSecretsMountedOnlyIntoTheirService walks every pod template: a
// service's database and env Secrets reach only that service's pods (and
// its Job), the superuser's only Postgres and the provisioning Jobs.
func TestSecretsMountedOnlyIntoTheirService(t *testing.T) {
	withSecrets := func(m *manifest.Manifest) {
		for _, s := range m.Services {
			s.Env["API_TOKEN"] = "tok-" + s.Name
		}
	}
	for holder, tmpl := range templates(shopObjects(t, withSecrets)) {
		name, component := tmpl.Labels[LabelName], tmpl.Labels[LabelComponent]
		for _, sec := range secretRefs(tmpl.Spec) {
			switch {
			case sec == adminSecret && (holder == postgresName || component == ComponentDBInit):
			case sec == DBSecretName(name) && (component == ComponentService || component == ComponentDBInit):
			case sec == SecretsName(name) && component == ComponentService:
			default:
				t.Errorf("%s (service %s, %s) reads Secret %s", holder, name, component, sec)
			}
		}
	}
}

func secretRefs(p corev1.PodSpec) []string {
	var refs []string
	for _, c := range slices.Concat(p.InitContainers, p.Containers) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				refs = append(refs, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				refs = append(refs, e.SecretRef.Name)
			}
		}
	}
	for _, v := range p.Volumes {
		if v.Secret != nil {
			refs = append(refs, v.Secret.SecretName)
		}
	}
	return refs
}

// peer is one end of a connection: a pod of the namespace by its labels,
// or something outside it.
type peer struct {
	labels  map[string]string
	outside bool
}

// allowed evaluates the policies as a NetworkPolicy implementation does:
// a connection needs the sender's egress and the receiver's ingress, each
// direction open unless some policy selects the pod for it.
func allowed(t *testing.T, pols []*networkingv1.NetworkPolicy, from, to peer, proto corev1.Protocol, port int) bool {
	return (from.outside || direction(t, pols, from, to, networkingv1.PolicyTypeEgress, proto, port)) &&
		(to.outside || direction(t, pols, to, from, networkingv1.PolicyTypeIngress, proto, port))
}

// rule is an ingress or egress rule: the other end and the ports.
type rule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

func direction(t *testing.T, pols []*networkingv1.NetworkPolicy, self, other peer, typ networkingv1.PolicyType, proto corev1.Protocol, port int) bool {
	selected := false
	for _, p := range pols {
		if !slices.Contains(p.Spec.PolicyTypes, typ) || !matches(t, &p.Spec.PodSelector, self) {
			continue
		}
		selected = true
		var rules []rule
		if typ == networkingv1.PolicyTypeIngress {
			for _, r := range p.Spec.Ingress {
				rules = append(rules, rule{r.From, r.Ports})
			}
		} else {
			for _, r := range p.Spec.Egress {
				rules = append(rules, rule{r.To, r.Ports})
			}
		}
		for _, r := range rules {
			portOK := len(r.ports) == 0 || slices.ContainsFunc(r.ports, func(np networkingv1.NetworkPolicyPort) bool {
				return *np.Protocol == proto && np.Port.IntValue() == port
			})
			peerOK := len(r.peers) == 0 || slices.ContainsFunc(r.peers, func(np networkingv1.NetworkPolicyPeer) bool {
				if np.NamespaceSelector != nil || np.IPBlock != nil {
					t.Fatalf("policy %s uses a peer the evaluator does not know: %+v", p.Name, np)
				}
				return np.PodSelector != nil && matches(t, np.PodSelector, other)
			})
			if portOK && peerOK {
				return true
			}
		}
	}
	return !selected
}

func matches(t *testing.T, s *metav1.LabelSelector, p peer) bool {
	if p.outside {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel.Matches(labels.Set(p.labels))
}

func TestNetworkPolicies(t *testing.T) {
	objs := shopObjects(t, nil)
	var pols []*networkingv1.NetworkPolicy
	for _, o := range objs {
		if p, ok := o.(*networkingv1.NetworkPolicy); ok {
			pols = append(pols, p)
		}
	}
	// Pods as the generator labels them: taken from the workloads
	// themselves, so the table tests the selectors against real labels.
	tmpls := templates(objs)
	pod := func(workload string) peer { return peer{labels: tmpls[workload].Labels} }
	var usersJob string
	for name := range tmpls {
		if strings.HasPrefix(name, "users-db-") {
			usersJob = name
		}
	}
	outside := peer{outside: true}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	for _, tt := range []struct {
		from, to string
		proto    corev1.Protocol
		port     int
		want     bool
	}{
		{"outside", "gateway", tcp, 8080, true},
		{"outside", "users", tcp, 8080, false},
		{"outside", "postgres", tcp, 5432, false},
		{"outside", "nats", tcp, 4222, false},
		{"gateway", "users", tcp, 8080, true},
		{"gateway", "orders", tcp, 8080, true},
		{"users", "orders", tcp, 8080, false},
		{"orders", "payments", tcp, 8080, false},
		{"orders", "gateway", tcp, 8080, false}, // the gateway admits anyone, but orders may not send
		{"orders", "postgres", tcp, 5432, true},
		{"gateway", "postgres", tcp, 5432, false},
		{usersJob, "postgres", tcp, 5432, true},
		{"users", "nats", tcp, 4222, true},
		{"users", "etcd", tcp, 2379, true},
		{"users", "nats", tcp, 6222, false},
		{"nats", "nats", tcp, 6222, true},
		{"etcd", "etcd", tcp, 2380, true},
		{"users", CollectorName, tcp, 4318, true},
		{"outside", CollectorName, tcp, 4318, true},
		{"users", "outside", udp, 53, true},
		{"postgres", "outside", tcp, 53, true},
		{"users", "outside", tcp, 443, false},
		{"postgres", "users", tcp, 8080, false},
	} {
		from, to := outside, outside
		if tt.from != "outside" {
			from = pod(tt.from)
		}
		if tt.to != "outside" {
			to = pod(tt.to)
		}
		if got := allowed(t, pols, from, to, tt.proto, tt.port); got != tt.want {
			t.Errorf("%s -> %s %s/%d allowed = %v, want %v", tt.from, tt.to, tt.proto, tt.port, got, tt.want)
		}
	}
}

func TestHAObjects(t *testing.T) {
	objs := shopObjects(t, ha)
	conf := find[*corev1.ConfigMap](t, objs, natsConfigName).Data["nats.conf"]
	for _, want := range []string{"sync_interval: always", "nats-route://nats-0.nats-peers:6222", "nats-route://nats-2.nats-peers:6222"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q:\n%s", want, conf)
		}
	}
	for _, name := range []string{natsName, etcdName} {
		if r := find[*appsv1.StatefulSet](t, objs, name).Spec.Replicas; *r != 3 {
			t.Errorf("%s replicas = %d, want 3", name, *r)
		}
	}
	var initial string
	for _, e := range find[*appsv1.StatefulSet](t, objs, etcdName).Spec.Template.Spec.Containers[0].Env {
		if e.Name == "ETCD_INITIAL_CLUSTER" {
			initial = e.Value
		}
	}
	if strings.Count(initial, "=http://") != 3 {
		t.Errorf("ETCD_INITIAL_CLUSTER = %q, want three members", initial)
	}
	for _, name := range []string{natsName, etcdName, "inventory", "orders"} {
		find[*policyv1.PodDisruptionBudget](t, objs, name)
	}
	if h := find[*autoscalingv2.HorizontalPodAutoscaler](t, objs, "orders"); *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 5 {
		t.Errorf("orders autoscaler = %+v, want 2..5", h.Spec)
	}
	if d := find[*appsv1.Deployment](t, objs, "orders"); d.Spec.Replicas != nil {
		t.Errorf("autoscaled orders sets replicas %d, which would fight its autoscaler", *d.Spec.Replicas)
	}
	if img := find[*appsv1.Deployment](t, objs, "users").Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/team/msctl/shop-users:latest" {
		t.Errorf("users image = %q", img)
	}
	if ns := objs[0].GetName(); ns != "shop-ha" {
		t.Errorf("namespace = %q, want kubernetes.namespace", ns)
	}
}

func TestSpecErrors(t *testing.T) {
	m := loadShop(t)
	if _, err := FromManifest(m, Options{}); err == nil || !strings.Contains(err.Error(), "no password for role") {
		t.Errorf("FromManifest without passwords: err = %v", err)
	}
	m.Services["users"].Env["SHUTDOWN_TIMEOUT"] = "soon"
	pw := func(string) (string, error) { return "pw", nil }
	if _, err := FromManifest(m, Options{Password: pw}); err == nil || !strings.Contains(err.Error(), `SHUTDOWN_TIMEOUT "soon"`) {
		t.Errorf("FromManifest with a bad SHUTDOWN_TIMEOUT: err = %v", err)
	}
	delete(m.Services["users"].Env, "SHUTDOWN_TIMEOUT")
	spec, err := FromManifest(m, Options{Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	spec.Broker.Replicas = 2
	spec.Services[0].Depends = []string{"nobody"}
	_, err = Objects(spec)
	for _, want := range []string{"broker replicas 2", "depends on unknown service nobody"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Objects: err = %v, want it to mention %q", err, want)
		}
	}
}
