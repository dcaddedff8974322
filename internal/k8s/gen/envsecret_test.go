package gen

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/msctl/msctl/internal/manifest"
)

// TestSecretEnvInASecret: secret-looking env values are read from the
// service's env Secret, never written into its Deployment, and a changed
// value rolls the Deployment.
func TestSecretEnvInASecret(t *testing.T) {
	env := func(token string) func(*manifest.Manifest) {
		return func(m *manifest.Manifest) {
			e := m.Services["orders"].Env
			e["API_TOKEN"] = token
			e["CACHE_URL"] = "redis://:cache-pw-1@cache:6379/0"
			e["LOG_LEVEL"] = "debug"
		}
	}
	objs := shopObjects(t, env("tok-orders-1"))
	sec := find[*corev1.Secret](t, objs, "orders-secrets")
	if string(sec.Data["API_TOKEN"]) != "tok-orders-1" || string(sec.Data["CACHE_URL"]) != "redis://:cache-pw-1@cache:6379/0" || len(sec.Data) != 2 {
		t.Errorf("orders-secrets holds %v, want API_TOKEN and CACHE_URL", sec.Data)
	}
	d := find[*appsv1.Deployment](t, objs, "orders")
	out, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, leaked := range []string{"tok-orders-1", "cache-pw-1"} {
		if strings.Contains(string(out), leaked) {
			t.Errorf("the orders Deployment holds the secret %q", leaked)
		}
	}
	refs := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		} else if e.Name == "LOG_LEVEL" && e.Value != "debug" {
			t.Errorf("LOG_LEVEL = %+v, want the plain value", e)
		}
	}
	if refs["API_TOKEN"] != "orders-secrets/API_TOKEN" || refs["CACHE_URL"] != "orders-secrets/CACHE_URL" {
		t.Errorf("secret env refs = %v", refs)
	}
	if _, ok := refs["LOG_LEVEL"]; ok {
		t.Error("LOG_LEVEL is read from the Secret")
	}
	hash := d.Spec.Template.Annotations[SecretsHashAnnotation]
	rotated := find[*appsv1.Deployment](t, shopObjects(t, env("tok-orders-2")), "orders").Spec.Template.Annotations[SecretsHashAnnotation]
	if hash == "" || hash == rotated {
		t.Errorf("env hash %q, %q after a new token: want it set and changed", hash, rotated)
	}
	for _, o := range shopObjects(t, nil) {
		if strings.HasSuffix(o.GetName(), "-secrets") {
			t.Errorf("a workspace without secrets has the Secret %s", o.GetName())
		}
	}
}
