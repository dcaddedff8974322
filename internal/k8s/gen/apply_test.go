package gen

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/testenv"
)

// warnings collects the API server's warnings (deprecated fields, pod
// security) so that a test can report them.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

// TestServerDryRun has the real API server validate every exported object,
// strictly (unknown or duplicate fields are errors), through server-side
// apply with dryRun=All: what `kubectl apply --dry-run=server
// --validate=strict` does. Only the namespace is created for real, as
// namespaced objects cannot be validated without it; it is deleted after.
func TestServerDryRun(t *testing.T) {
	kubeconfig := testenv.RequireKubernetes(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	warn := &warnings{}
	cfg.WarningHandler = warn
	cfg.Timeout = 30 * time.Second
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	for _, tt := range []struct {
		name   string
		change func(*manifest.Manifest)
	}{
		// A secret in orders' env gives it an env Secret to validate too.
		{"shop", func(m *manifest.Manifest) { m.Services["orders"].Env["API_TOKEN"] = "tok-orders" }},
		{"shop-ha", ha},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := fmt.Sprintf("msctl-gen-test-%d", time.Now().UnixNano()%1e9)
			objs := shopObjects(t, func(m *manifest.Manifest) {
				if tt.change != nil {
					tt.change(m)
				}
				m.Kubernetes.Namespace = ns
			})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			for _, obj := range objs {
				dryRun := []string{metav1.DryRunAll}
				if _, ok := obj.(*corev1.Namespace); ok {
					dryRun = nil
					t.Cleanup(func() { deleteNamespace(t, dyn, mapper, obj) })
				}
				if err := apply(ctx, dyn, mapper, obj, dryRun); err != nil {
					t.Errorf("%s: %v", FileName(obj), err)
				}
			}
			warn.mu.Lock()
			defer warn.mu.Unlock()
			for _, w := range warn.msgs {
				t.Errorf("API server warning: %s", w)
			}
			warn.msgs = nil
		})
	}
}

func apply(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, obj Object, dryRun []string) error {
	gvk := obj.GetObjectKind().GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var r dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if obj.GetNamespace() != "" {
		r = dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	_, err = r.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		FieldManager:    "msctl",
		Force:           ptr.To(true),
		DryRun:          dryRun,
		FieldValidation: metav1.FieldValidationStrict,
	})
	return err
}

func deleteNamespace(t *testing.T, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, ns Object) {
	gvk := ns.GetObjectKind().GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = dyn.Resource(mapping.Resource).Delete(ctx, ns.GetName(), metav1.DeleteOptions{})
	}
	if err != nil {
		t.Errorf("delete test namespace %s: %v", ns.GetName(), err)
	}
}

var _ rest.WarningHandler = (*warnings)(nil)
