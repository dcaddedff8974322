package kubernetes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/msctl/msctl/internal/k8s/gen"
)

// collectorArgs run msctl as the collector (the image's entrypoint is msctl).
var collectorArgs = []string{"agent", "collect"}

// fieldManager owns every field msctl applies (server-side apply).
const fieldManager = "msctl"

// resources maps the kinds the generator emits to their API resources.
var resources = map[string]schema.GroupVersionResource{
	"Namespace":               {Version: "v1", Resource: "namespaces"},
	"Secret":                  {Version: "v1", Resource: "secrets"},
	"ConfigMap":               {Version: "v1", Resource: "configmaps"},
	"Service":                 {Version: "v1", Resource: "services"},
	"Deployment":              {Group: "apps", Version: "v1", Resource: "deployments"},
	"StatefulSet":             {Group: "apps", Version: "v1", Resource: "statefulsets"},
	"Job":                     {Group: "batch", Version: "v1", Resource: "jobs"},
	"PodDisruptionBudget":     {Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"},
	"HorizontalPodAutoscaler": {Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"},
	"NetworkPolicy":           {Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
}

// spec is the generator's input for this workspace: the caller's Spec
// with the passwords the runtime keeps, the images Build made and the
// collector, plus the services EnsureDatabase was asked for that the Spec
// does not list (the conformance suite's), so that the generator makes
// their Secret and provisioning Job too.
func (r *Runtime) spec() (gen.Spec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.base
	s.Namespace = r.ns
	s.CollectorImage, s.CollectorArgs = r.collector, collectorArgs
	s.Chaos = r.chaosSpecLocked()
	s.PostgresPassword = r.adminPW
	s.Services = slices.Clone(r.base.Services)
	listed := map[string]bool{}
	for i := range s.Services {
		svc := &s.Services[i]
		listed[svc.Name] = true
		if img, ok := r.built[svc.Name]; ok {
			svc.Image = img
		}
		svc.DatabasePassword = ""
		if svc.Database {
			pw, err := r.passwordLocked(svc.Name)
			if err != nil {
				return s, err
			}
			svc.DatabasePassword = pw
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.dbs)) {
		if listed[name] {
			continue
		}
		s.Services = append(s.Services, gen.ServiceSpec{
			Name: name, Image: r.imageLocked(name), Replicas: 1, Health: defaultHealth,
			Database: true, DatabasePassword: r.dbs[name],
		})
	}
	return s, nil
}

// defaultHealth is msctl.yaml's default readiness path, for the services
// the runtime adds to the Spec.
const defaultHealth = "/readyz"

// passwordLocked returns the stored password of a role, drawing a new one
// the first time. The cluster keeps them (loadPasswords), so data kept
// across runs stays readable.
func (r *Runtime) passwordLocked(role string) (string, error) {
	if role == gen.PostgresRole {
		return r.adminPW, nil
	}
	if pw, ok := r.dbs[role]; ok {
		return pw, nil
	}
	pw, err := gen.NewPassword()
	if err != nil {
		return "", err
	}
	r.dbs[role] = pw
	return pw, nil
}

func (r *Runtime) imageLocked(service string) string {
	if img, ok := r.built[service]; ok {
		return img
	}
	return gen.ServiceImage(r.opts.Registry, r.base.Project, service, gen.DefaultTag)
}

// withPostgres makes sure the spec yields Postgres: the generator adds it
// only for a workspace with a database, but the Runtime contract starts it
// always (EnsureDatabase may come later). The stand-in service exists only
// in the generator's input; infraObjects keeps none of its objects.
func withPostgres(s gen.Spec) gen.Spec {
	if slices.ContainsFunc(s.Services, func(svc gen.ServiceSpec) bool { return svc.Database }) {
		return s
	}
	s.Services = append(slices.Clone(s.Services), gen.ServiceSpec{
		Name: "msctl-postgres-standin", Image: "unused", Replicas: 1, Health: defaultHealth,
		Database: true, DatabasePassword: s.PostgresPassword,
	})
	return s
}

// infraObjects are the namespace and every infra component's objects.
func infraObjects(s gen.Spec) ([]gen.Object, error) {
	objs, err := gen.Objects(withPostgres(s))
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(objs, func(o gen.Object) bool {
		return kind(o) != "Namespace" && o.GetLabels()[gen.LabelComponent] != gen.ComponentInfra
	}), nil
}

// serviceObjects are one service's Secret, provisioning Job, Service and
// NetworkPolicy, plus every NetworkPolicy (they name the services), and its
// Deployment, whose pod template instances are made from. Deployments,
// PodDisruptionBudgets and autoscalers are not applied: the orchestrator
// owns the instances (see the package comment).
func serviceObjects(s gen.Spec, service string) (apply []gen.Object, deploy *appsv1.Deployment, err error) {
	objs, err := gen.Objects(s)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range objs {
		l := o.GetLabels()
		switch {
		case kind(o) == "Deployment" && o.GetName() == service && l[gen.LabelComponent] == gen.ComponentService:
			deploy = o.(*appsv1.Deployment)
		case kind(o) == "NetworkPolicy":
			apply = append(apply, o)
		case l[gen.LabelName] != service && o.GetName() != gen.DBSecretName(service):
		case kind(o) == "Secret", kind(o) == "Job", kind(o) == "Service":
			apply = append(apply, o)
		}
	}
	if deploy == nil {
		return nil, nil, fmt.Errorf("generator made no deployment for service %s", service)
	}
	return apply, deploy, nil
}

func kind(o gen.Object) string { return o.GetObjectKind().GroupVersionKind().Kind }

// apply server-side applies objects in order, as field manager msctl,
// taking over fields another manager set (a developer's kubectl edit).
func (r *Runtime) apply(ctx context.Context, objs []gen.Object) error {
	for _, o := range objs {
		gvr, ok := resources[kind(o)]
		if !ok {
			return fmt.Errorf("apply %s %s: kind unknown to the runtime", kind(o), o.GetName())
		}
		m, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return fmt.Errorf("apply %s %s: %w", kind(o), o.GetName(), err)
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		var res interface {
			Apply(context.Context, string, *unstructured.Unstructured, metav1.ApplyOptions, ...string) (*unstructured.Unstructured, error)
		} = r.dyn.Resource(gvr)
		if kind(o) != "Namespace" {
			res = r.dyn.Resource(gvr).Namespace(r.ns)
		}
		if _, err := res.Apply(ctx, o.GetName(), u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return forbidden(fmt.Errorf("apply %s %s/%s: %w", strings.ToLower(kind(o)), r.ns, o.GetName(), err),
				"apply "+strings.ToLower(kind(o))+"s", r.context)
		}
	}
	return nil
}

// instancePod is one instance of a service: the Deployment's pod template
// as a Pod named after the instance, run once (the orchestrator replaces
// exited instances), with the instance label so it can be found again.
func instancePod(d *appsv1.Deployment, name, instance string) *corev1.Pod {
	t := d.Spec.Template.DeepCopy()
	labels := t.Labels
	labels[labelInstance] = instance
	spec := t.Spec
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.Namespace, Labels: labels, Annotations: t.Annotations},
		Spec:       spec,
	}
}

// labelInstance on a pod is the runtime's instance id.
const labelInstance = "msctl.dev/instance"
