package kubernetes

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msctl/msctl/internal/k8s/gen"
)

// The fake clientset stands in for the API server only to drive our own
// classification of what it reports; the real behaviour is tested on the
// cluster (TestConformance).

func waitingPod(reason, message string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-1", Namespace: "msctl-shop"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "orders", Image: "msctl/shop-orders:abc", RestartCount: 4,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		}}},
	}
}

func TestDiagnose(t *testing.T) {
	for _, tc := range []struct {
		reason string
		want   []string // substrings of the error; none: no error
	}{
		{"ImagePullBackOff", []string{"pod msctl-shop/orders-1", "cannot get image msctl/shop-orders:abc", "ImagePullBackOff", EnvContainerdSock, "kubernetes.registry"}},
		{"ErrImageNeverPull", []string{"cannot get image", "loads images into the node", "docker login"}},
		{"CrashLoopBackOff", []string{"container orders keeps crashing", "4 restarts", "its last lines:\n  fake logs"}},
		{"CreateContainerConfigError", []string{"cannot start: CreateContainerConfigError: secret \"x\" not found"}},
		{"ContainerCreating", nil},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			cs := fake.NewClientset()
			err := diagnose(context.Background(), cs, waitingPod(tc.reason, `secret "x" not found`), time.Now())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("diagnose = %v, want still starting", err)
				}
				return
			}
			if err == nil {
				t.Fatal("diagnose = nil, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDiagnosePendingClaim(t *testing.T) {
	now := time.Now()
	claim := func(age time.Duration) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data-postgres-0", Namespace: "msctl-shop", CreationTimestamp: metav1.NewTime(now.Add(-age))},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
		}
	}
	event := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "e1", Namespace: "msctl-shop"},
		InvolvedObject: corev1.ObjectReference{Kind: "PersistentVolumeClaim", Name: "data-postgres-0"},
		Reason:         "FailedBinding", Message: "no persistent volumes available for this claim and no storage class is set",
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "postgres-0", Namespace: "msctl-shop"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-postgres-0"},
		}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if err := diagnose(context.Background(), fake.NewClientset(claim(time.Second), event), pod, now); err != nil {
		t.Errorf("young pending claim: %v, want still starting", err)
	}
	err := diagnose(context.Background(), fake.NewClientset(claim(time.Minute), event), pod, now)
	if err == nil {
		t.Fatal("old pending claim: no error")
	}
	for _, w := range []string{"persistentvolumeclaim msctl-shop/data-postgres-0", "still Pending after 1m0s", "FailedBinding: no persistent volumes", "StorageClass"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestCheckPermissionsNamesWhatIsMissing(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		rev := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		attr := rev.Spec.ResourceAttributes
		rev.Status.Allowed = !(attr.Resource == "pods" && attr.Subresource == "portforward") && attr.Resource != "namespaces"
		return true, rev, nil
	})
	err := checkPermissions(context.Background(), cs, "msctl-shop", "dev")
	if err == nil {
		t.Fatal("no error with permissions missing")
	}
	for _, w := range []string{"missing RBAC permission (context dev)", "cannot create namespaces", "cannot create pods/portforward in namespace msctl-shop", "kubectl auth can-i --list -n msctl-shop"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "secrets") {
		t.Errorf("error %q names a granted permission", err)
	}
}

func TestKubeconfigErrors(t *testing.T) {
	empty := kubeconfigError(clientcmd.ErrEmptyConfig, "", []string{"/home/u/.kube/config"})
	if !strings.Contains(empty.Error(), "no kubeconfig") || !strings.Contains(empty.Error(), "make k8s-up") {
		t.Errorf("empty config: %v", empty)
	}
	_, _, err := restConfig("/nonexistent/kubeconfig", "")
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("missing file: %v, want a kubeconfig error", err)
	}
}

func TestUnreachableClusterFailsFast(t *testing.T) {
	// A loopback port nobody listens on: the dial is refused at once, and
	// a black-holed address would be cut by reachTimeout.
	kc := t.TempDir() + "/kubeconfig"
	cfg := "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n" +
		"contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Spec: gen.Spec{Project: "shop"}, Kubeconfig: kc})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	begin := time.Now()
	err = r.check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "--context") {
		t.Errorf("check = %v, want the cluster named and the fix", err)
	}
	if d := time.Since(begin); d > reachTimeout+time.Second {
		t.Errorf("check took %s", d)
	}
}

func TestPodName(t *testing.T) {
	for in, want := range map[string]string{
		"orders-1-a1b2":         "orders-1-a1b2",
		"Orders_1.x":            "orders-1-x",
		"-x-":                   "x",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := podName(in); got != want {
			t.Errorf("podName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"postgres:15":                "docker.io/library/postgres:15",
		"bitnami/etcd:3.5":           "docker.io/bitnami/etcd:3.5",
		"registry.local:5000/x/y:1":  "registry.local:5000/x/y:1",
		"localhost/msctl/shop-a:abc": "localhost/msctl/shop-a:abc",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
