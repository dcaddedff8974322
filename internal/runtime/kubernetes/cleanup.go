package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/msctl/msctl/internal/k8s/gen"
)

// namespaceGoneTimeout bounds the wait for a deleted namespace to go: its
// pods get their grace period, then the namespace controller finishes.
const namespaceGoneTimeout = 3 * time.Minute

// kept are the kinds Cleanup without volumes leaves: the claims holding the
// data and the Secrets with the passwords that data was initialised with.
var kept = map[string]bool{"Secret": true}

// Cleanup removes the workspace. With volumes it deletes the namespace and
// waits until it is gone; without, it deletes every object msctl made in
// it except the claims and Secrets, so the next up finds its data. Both are
// idempotent.
func (r *Runtime) Cleanup(ctx context.Context, volumes bool) error {
	r.closeForwards()
	r.mu.Lock()
	r.infra = nil
	r.mu.Unlock()
	if err := r.check(ctx); err != nil {
		return err
	}
	if volumes {
		err := r.cs.CoreV1().Namespaces().Delete(ctx, r.ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return forbidden(fmt.Errorf("delete namespace %s: %w", r.ns, err), "delete namespaces", r.context)
		}
		r.mu.Lock()
		r.dbs, r.adminPW = map[string]string{}, ""
		r.mu.Unlock()
		return r.waitNamespaceGone(ctx)
	}
	sel := labels.Set{gen.LabelPartOf: gen.PartOf(r.base.Project)}.String()
	var errs []error
	for k, gvr := range resources {
		if kept[k] || k == "Namespace" {
			continue
		}
		err := r.dyn.Resource(gvr).Namespace(r.ns).DeleteCollection(ctx,
			metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)},
			metav1.ListOptions{LabelSelector: sel})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", gvr.Resource, err))
		}
	}
	pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	if err := r.dyn.Resource(pods).Namespace(r.ns).DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: sel}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete pods: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return forbidden(fmt.Errorf("clean up namespace %s: %w", r.ns, err), "delete the workspace's objects", r.context)
	}
	return r.waitNoPods(ctx, sel, namespaceGoneTimeout)
}

// waitNamespaceGone waits while the namespace is terminating: nothing can
// be created in it until it is gone.
func (r *Runtime) waitNamespaceGone(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, namespaceGoneTimeout)
	defer cancel()
	for {
		ns, err := r.cs.CoreV1().Namespaces().Get(ctx, r.ns, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return forbidden(fmt.Errorf("get namespace %s: %w", r.ns, err), "get namespaces", r.context)
		case ns.DeletionTimestamp == nil:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s is still terminating after %s; kubectl get all -n %s shows what holds it", r.ns, namespaceGoneTimeout, r.ns)
		case <-time.After(pollEvery):
		}
	}
}
