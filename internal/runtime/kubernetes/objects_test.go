package kubernetes

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/msctl/msctl/internal/k8s/gen"
)

func testSpec() gen.Spec {
	return gen.Spec{
		Project: "shop", Namespace: "msctl-shop", PostgresPassword: "admin",
		Postgres: gen.Infra{Image: "postgres:15", Replicas: 1},
		Broker:   gen.Infra{Image: "nats:2.15", Replicas: 1},
		Registry: gen.Infra{Image: "bitnami/etcd:3.5", Replicas: 1},
		Services: []gen.ServiceSpec{
			{Name: "gateway", Image: "msctl/shop-gateway:1", Replicas: 1, Health: "/readyz", Public: true, Depends: []string{"orders"}},
			{Name: "orders", Image: "msctl/shop-orders:1", Replicas: 2, Health: "/readyz", Database: true, DatabasePassword: "pw",
				Env: map[string]string{"MSCTL_SERVICE_SECRET": "own-key", "MSCTL_SECRET_CARD_VAULT": "shared-key", "LOG_LEVEL": "debug"}},
		},
	}
}

func names(objs []gen.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, kind(o)+"/"+o.GetName())
	}
	return out
}

// Postgres is part of the infra even when no service has a database, and
// nothing of the stand-in service that brings it leaks out.
func TestInfraObjectsAlwaysHavePostgres(t *testing.T) {
	s := testSpec()
	s.Services = s.Services[:1]
	s.Services[0].Depends = nil
	objs, err := infraObjects(s)
	if err != nil {
		t.Fatal(err)
	}
	got := names(objs)
	for _, want := range []string{"Namespace/msctl-shop", "StatefulSet/postgres", "StatefulSet/nats", "StatefulSet/etcd", "Secret/postgres-admin", "Service/postgres"} {
		if !slices.Contains(got, want) {
			t.Errorf("infra objects %v lack %s", got, want)
		}
	}
	for _, n := range got {
		if n == "Deployment/gateway" || strings.Contains(n, "standin") {
			t.Errorf("infra objects hold %s", n)
		}
	}
}

// A service's objects are its Secret, Job and Service plus the policies;
// its Deployment is returned as the instances' template, not applied.
func TestServiceObjects(t *testing.T) {
	apply, deploy, err := serviceObjects(testSpec(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	got := names(apply)
	for _, want := range []string{"Secret/orders-db", "Secret/orders-secrets", "Service/orders", "NetworkPolicy/orders", "NetworkPolicy/gateway", "NetworkPolicy/default-deny"} {
		if !slices.Contains(got, want) {
			t.Errorf("orders objects %v lack %s", got, want)
		}
	}
	if !slices.ContainsFunc(apply, func(o gen.Object) bool { return kind(o) == "Job" }) {
		t.Errorf("orders objects %v lack the provisioning Job", got)
	}
	for _, n := range got {
		if slices.Contains([]string{"Deployment/orders", "PodDisruptionBudget/orders", "Service/gateway", "StatefulSet/postgres"}, n) {
			t.Errorf("orders objects hold %s", n)
		}
	}
	pod := instancePod(deploy, "orders-1-ab", "orders-1-ab")
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever || pod.Labels[labelInstance] != "orders-1-ab" ||
		pod.Labels[gen.LabelName] != "orders" || pod.Spec.Containers[0].Image != "msctl/shop-orders:1" {
		t.Errorf("instance pod: %+v", pod)
	}
	// Derived secrets reach the pod from the Secret, never as values.
	for _, e := range pod.Spec.Containers[0].Env {
		switch e.Name {
		case "MSCTL_SERVICE_SECRET", "MSCTL_SECRET_CARD_VAULT":
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "orders-secrets" {
				t.Errorf("pod env %s = %+v, want a reference to Secret orders-secrets", e.Name, e)
			}
		case "LOG_LEVEL":
			if e.Value != "debug" {
				t.Errorf("pod env LOG_LEVEL = %+v", e)
			}
		}
	}
	if deploy.Spec.Template.Labels[labelInstance] != "" {
		t.Error("instancePod changed the Deployment's template")
	}
}

// The collector image is a valid OCI layout: index → manifest → config and
// layer, each blob under its digest, the layer holding /msctl.
func TestOCIArchive(t *testing.T) {
	archive, err := ociArchive("docker.io/msctl/collector:abc", []byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	blob := func(digest string) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+digest[len("sha256:"):]]
		sum := sha256.Sum256(b)
		if !ok || "sha256:"+hex.EncodeToString(sum[:]) != digest {
			t.Fatalf("blob %s missing or wrong", digest)
		}
		return b
	}
	type desc struct {
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	}
	var index struct{ Manifests []desc }
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %s, %v", files["index.json"], err)
	}
	if n := index.Manifests[0].Annotations["io.containerd.image.name"]; n != "docker.io/msctl/collector:abc" {
		t.Errorf("image name %q", n)
	}
	var m struct {
		Config desc
		Layers []desc
	}
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest: %v", err)
	}
	var cfg struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob(m.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/msctl"}) || !slices.Equal(cfg.RootFS.DiffIDs, []string{m.Layers[0].Digest}) {
		t.Errorf("config %+v", cfg)
	}
	lr := tar.NewReader(bytes.NewReader(blob(m.Layers[0].Digest)))
	h, err := lr.Next()
	if err != nil || h.Name != "msctl" || h.Mode&0o111 == 0 {
		t.Errorf("layer entry %+v, %v", h, err)
	}
}
