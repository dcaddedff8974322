package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/msctl/msctl/internal/runtime"
)

// RestartInfra deletes the pods of one infra StatefulSet, which recreates
// them with their claims, and waits until they are ready again. The
// kubelet restarts a crashed container by itself; this is the restart a
// user asks for, or the one for a pod that is gone. The host endpoints do
// not change: the port-forwards resolve the pod per connection.
func (r *Runtime) RestartInfra(ctx context.Context, component string) (runtime.Infra, error) {
	if !slices.Contains(runtime.InfraComponents, component) {
		return runtime.Infra{}, runtime.UnknownInfraError(component)
	}
	r.mu.Lock()
	inf := r.infra
	r.mu.Unlock()
	if inf == nil {
		return runtime.Infra{}, fmt.Errorf("restart %s: the infra is not started", component)
	}
	sts, err := r.cs.AppsV1().StatefulSets(r.ns).Get(ctx, component, metav1.GetOptions{})
	if err != nil {
		return runtime.Infra{}, fmt.Errorf("restart %s: %w", component, err)
	}
	sel := sts.Spec.Selector.MatchLabels
	pods, err := r.cs.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set(sel).String()})
	if err != nil {
		return runtime.Infra{}, fmt.Errorf("restart %s: list pods: %w", component, err)
	}
	for _, p := range pods.Items {
		err := r.cs.CoreV1().Pods(r.ns).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return runtime.Infra{}, fmt.Errorf("restart %s: delete pod %s: %w", component, p.Name, err)
		}
		if err := r.waitReplaced(ctx, p.Name, p.UID); err != nil {
			return runtime.Infra{}, fmt.Errorf("restart %s: %w", component, err)
		}
	}
	if err := r.waitReady(ctx, "statefulset "+component, sel, int(ptr.Deref(sts.Spec.Replicas, 1))); err != nil {
		return runtime.Infra{}, fmt.Errorf("restart %s: %w", component, err)
	}
	return *inf, nil
}

// waitReplaced returns once the pod name no longer is the one with uid, so
// that a later readiness wait does not count the old pod.
func (r *Runtime) waitReplaced(ctx context.Context, name string, uid types.UID) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		p, err := r.cs.CoreV1().Pods(r.ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && p.UID != uid {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s/%s still terminating after %s: %w", r.ns, name, readyTimeout, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}
