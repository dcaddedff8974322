package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestLoadKubernetes(t *testing.T) {
	p := workspace(t, `project: shop
kubernetes:
  namespace: shop-dev
  context: kind-dev
  registry: registry.example.com/team
infra:
  broker:
    replicas: 3
  registry:
    replicas: 3
services:
  orders:
    autoscale: {min: 2, max: 5}
  users:
    autoscale:
      max: 3
      cpu: 60
`, "services/orders", "services/users")
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Kubernetes{Namespace: "shop-dev", Context: "kind-dev", Registry: "registry.example.com/team"}
	if m.Kubernetes != want {
		t.Errorf("Kubernetes = %+v, want %+v", m.Kubernetes, want)
	}
	if got := [3]int{m.Infra.Postgres.Replicas, m.Infra.Broker.Replicas, m.Infra.Registry.Replicas}; got != [3]int{1, 3, 3} {
		t.Errorf("infra replicas = %v, want [1 3 3]", got)
	}
	if got := m.Services["orders"].Autoscale; !reflect.DeepEqual(got, &Autoscale{Min: 2, Max: 5, CPU: DefaultAutoscaleCPU}) {
		t.Errorf("orders autoscale = %+v", got)
	}
	if got := m.Services["users"].Autoscale; !reflect.DeepEqual(got, &Autoscale{Min: 1, Max: 3, CPU: 60}) {
		t.Errorf("users autoscale = %+v", got)
	}
}

func TestLoadKubernetesDefaults(t *testing.T) {
	m, err := Load(workspace(t, "project: shop\nservices:\n  users: {}\n", "services/users"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kubernetes != (Kubernetes{}) || m.Services["users"].Autoscale != nil {
		t.Errorf("Kubernetes = %+v, autoscale = %+v; want zero", m.Kubernetes, m.Services["users"].Autoscale)
	}
	if got := [3]int{m.Infra.Postgres.Replicas, m.Infra.Broker.Replicas, m.Infra.Registry.Replicas}; got != [3]int{1, 1, 1} {
		t.Errorf("infra replicas = %v, want [1 1 1]", got)
	}
}

func TestLoadKubernetesErrors(t *testing.T) {
	// want's line numbers count the "project: shop" line prepended to yml.
	for _, tt := range []struct{ name, yml, want string }{
		{"namespace", "kubernetes:\n  namespace: Shop_Dev\n", `3: kubernetes.namespace "Shop_Dev" is not a valid namespace name`},
		{"registry scheme", "kubernetes:\n  registry: https://r.example.com/\n", `3: kubernetes.registry "https://r.example.com/" is not an image prefix`},
		{"unknown key", "kubernetes:\n  namspace: x\n", `3: unknown key "kubernetes.namspace"`},
		{"broker replicas", "infra:\n  broker:\n    replicas: 2\n", "4: infra.broker.replicas is 2, must be 1 or 3"},
		{"postgres replicas", "infra:\n  postgres:\n    replicas: 3\n", "4: infra.postgres.replicas is not supported"},
		{"autoscale without max", "services:\n  users:\n    autoscale: {min: 2}\n", "4: services.users.autoscale needs max"},
		{"autoscale max below min", "services:\n  users:\n    autoscale:\n      min: 4\n      max: 2\n", "6: services.users.autoscale.max 2 is below min 4"},
		{"autoscale cpu", "services:\n  users:\n    autoscale: {max: 2, cpu: 150}\n", "4: services.users.autoscale.cpu is 150, out of range"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yml := "project: shop\n" + tt.yml
			if !strings.Contains(yml, "services:") {
				yml += "services:\n  users: {}\n"
			}
			p := workspace(t, yml, "services/users")
			_, err := Load(p)
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("err = %v, want one error", err)
			}
			want := p + ":" + tt.want
			if !strings.HasPrefix(es[0].Error(), want) || es[0].Fix == "" {
				t.Errorf("err = %q, want prefix %q and a fix", es[0], want)
			}
		})
	}
}
