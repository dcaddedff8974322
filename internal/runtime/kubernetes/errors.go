package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// clusterFix is what to do when no cluster answers.
const clusterFix = "start one (make k8s-up, kind create cluster, k3d cluster create) or pick another with --context NAME"

// kubeconfigError explains a kubeconfig that names no usable cluster.
func kubeconfigError(err error, kctx string, paths []string) error {
	switch {
	case clientcmd.IsEmptyConfig(err):
		return fmt.Errorf("no kubeconfig: none of %s names a cluster; set KUBECONFIG or %s", strings.Join(paths, ", "), clusterFix)
	case kctx != "" && clientcmd.IsContextNotFound(err):
		return fmt.Errorf("kubeconfig has no context %q; list them with kubectl config get-contexts", kctx)
	default:
		return fmt.Errorf("kubeconfig (%s): %w", strings.Join(paths, ", "), err)
	}
}

// imageFix is what gets an image to a pod: msctl loads it into a local
// cluster's node, or pushes it to a registry the cluster pulls from.
const imageFix = "for a local cluster, set " + EnvContainerdSock + " to its node's containerd socket and msctl loads images into the node; " +
	"for any other, set kubernetes.registry in msctl.yaml (host[:port][/path]) to a registry the cluster can pull from, log in to it with docker login, and msctl pushes the service images there"

// reachTimeout bounds the first request: an address nobody answers on must
// fail in seconds.
const reachTimeout = 5 * time.Second

func (r *Runtime) reachable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	body, err := r.cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err == nil {
		r.log.Debug("cluster answers", "version", string(body))
		return nil
	}
	if apierrors.IsUnauthorized(err) {
		return fmt.Errorf("cluster %s (context %s) rejects the kubeconfig's credentials: %w; refresh them (e.g. re-run your cloud's get-credentials)", r.rest.Host, r.context, err)
	}
	return fmt.Errorf("cluster %s (context %s) does not answer: %w; %s", r.rest.Host, r.context, err, clusterFix)
}

// need is one permission the runtime uses.
type need struct {
	verb, group, resource, sub string
	cluster                    bool // not namespaced
}

// needs are the permissions checked before anything is created, so that a
// missing one is reported with the fix rather than as a 403 half-way.
var needs = []need{
	{verb: "create", resource: "namespaces", cluster: true},
	{verb: "patch", resource: "secrets"},
	{verb: "patch", resource: "configmaps"},
	{verb: "patch", resource: "services"},
	{verb: "patch", group: "apps", resource: "statefulsets"},
	{verb: "patch", group: "apps", resource: "deployments"},
	{verb: "patch", group: "batch", resource: "jobs"},
	{verb: "patch", group: "networking.k8s.io", resource: "networkpolicies"},
	{verb: "create", resource: "pods"},
	{verb: "delete", resource: "pods"},
	{verb: "get", resource: "pods", sub: "log"},
	{verb: "create", resource: "pods", sub: "portforward"},
}

// permitted asks the API server (SelfSubjectAccessReview) whether the
// kubeconfig's user holds every permission in needs.
func (r *Runtime) permitted(ctx context.Context) error {
	return checkPermissions(ctx, r.cs, r.ns, r.context)
}

func checkPermissions(ctx context.Context, cs kubernetes.Interface, ns, kctx string) error {
	var missing []string
	for _, n := range needs {
		attr := &authv1.ResourceAttributes{Verb: n.verb, Group: n.group, Resource: n.resource, Subresource: n.sub}
		if !n.cluster {
			attr.Namespace = ns
		}
		rev, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attr},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("check permissions (context %s): %w", kctx, err)
		}
		if !rev.Status.Allowed {
			missing = append(missing, n.String(ns))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing RBAC permission (context %s): cannot %s; ask a cluster admin for a Role/ClusterRole granting it (kubectl auth can-i --list -n %s shows what you have)",
			kctx, strings.Join(missing, ", cannot "), ns)
	}
	return nil
}

func (n need) String(ns string) string {
	res := n.resource
	if n.sub != "" {
		res += "/" + n.sub
	}
	if n.group != "" {
		res += "." + n.group
	}
	if n.cluster {
		return n.verb + " " + res
	}
	return n.verb + " " + res + " in namespace " + ns
}

// forbidden turns a 403 into the permission and the fix; other errors pass.
func forbidden(err error, what, kctx string) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("missing RBAC permission (context %s) to %s: %w; ask a cluster admin for a Role granting it", kctx, what, err)
	}
	return err
}

// pvcBindTimeout is how long a claim may stay Pending before a waiting
// start reports it: provisioners bind in seconds.
const pvcBindTimeout = 20 * time.Second

// logTail is how many of a crashing container's last lines an error shows.
const logTail = 15

// diagnose returns an error when a pod cannot become ready by waiting
// longer: an image the node cannot get, a crash loop (with the container's
// last lines), a claim that does not bind, a config error. nil means
// "still starting".
func diagnose(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, now time.Time) error {
	statuses := append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...)
	for _, st := range statuses {
		w := st.State.Waiting
		if w == nil {
			continue
		}
		switch w.Reason {
		case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName":
			return fmt.Errorf("pod %s/%s: container %s cannot get image %s (%s: %s); %s",
				pod.Namespace, pod.Name, st.Name, st.Image, w.Reason, w.Message, imageFix)
		case "CrashLoopBackOff":
			return fmt.Errorf("pod %s/%s: container %s keeps crashing (%s, %d restarts); its last lines:\n%s",
				pod.Namespace, pod.Name, st.Name, w.Reason, st.RestartCount, lastLines(ctx, cs, pod, st.Name))
		case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
			return fmt.Errorf("pod %s/%s: container %s cannot start: %s: %s", pod.Namespace, pod.Name, st.Name, w.Reason, w.Message)
		}
	}
	if pod.Status.Phase == corev1.PodPending {
		return pendingClaims(ctx, cs, pod, now)
	}
	return nil
}

// lastLines is the tail of a container's previous run, or of its current
// one when it has none.
func lastLines(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, container string) string {
	for _, previous := range []bool{true, false} {
		req := cs.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
			Container: container, Previous: previous, TailLines: ptr.To[int64](logTail),
		})
		rc, err := req.Stream(ctx)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
		rc.Close()
		if s := strings.TrimRight(string(b), "\n"); s != "" {
			return "  " + strings.ReplaceAll(s, "\n", "\n  ")
		}
	}
	return "  (no output)"
}

// pendingClaims reports a claim of the pod that stayed Pending longer than
// pvcBindTimeout, with the claim's last event (why it does not bind).
func pendingClaims(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, now time.Time) error {
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		pvc, err := cs.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
		if err != nil || pvc.Status.Phase != corev1.ClaimPending || now.Sub(pvc.CreationTimestamp.Time) < pvcBindTimeout {
			continue
		}
		why := "no event"
		evs, err := cs.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: fields.AndSelectors(
			fields.OneTermEqualSelector("involvedObject.kind", "PersistentVolumeClaim"),
			fields.OneTermEqualSelector("involvedObject.name", pvc.Name),
		).String()})
		if err == nil && len(evs.Items) > 0 {
			last := slices.MaxFunc(evs.Items, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
			why = last.Reason + ": " + last.Message
		}
		return fmt.Errorf("persistentvolumeclaim %s/%s of pod %s is still Pending after %s (%s); give the cluster a default StorageClass or a provisioner that binds it",
			pvc.Namespace, pvc.Name, pod.Name, now.Sub(pvc.CreationTimestamp.Time).Round(time.Second), why)
	}
	return nil
}

// errNotReady wraps what a timed-out wait saw last.
var errNotReady = errors.New("not ready")
