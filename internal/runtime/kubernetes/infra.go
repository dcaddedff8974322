package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/runtime"
)

// readyTimeout bounds a wait for pods that are starting normally; problems
// that waiting cannot fix are reported as soon as diagnose sees them.
const readyTimeout = 3 * time.Minute

// pollEvery is how often waits look at pods: a list per tick, cheap next
// to a start that takes seconds.
const pollEvery = 500 * time.Millisecond

// StartInfra applies the infra objects, waits until every infra pod is
// ready and returns port-forwards to them (host) and their Service names
// (services).
func (r *Runtime) StartInfra(ctx context.Context, spec runtime.InfraSpec) (runtime.Infra, error) {
	r.mu.Lock()
	if r.infra != nil {
		inf := *r.infra
		r.mu.Unlock()
		return inf, nil
	}
	r.mu.Unlock()
	if err := r.check(ctx); err != nil {
		return runtime.Infra{}, err
	}
	if err := r.waitNamespaceGone(ctx); err != nil {
		return runtime.Infra{}, err
	}
	if err := r.loadPasswords(ctx); err != nil {
		return runtime.Infra{}, err
	}
	if r.opts.CollectorBinary != "" && spec.OTLPHostAddr != "" {
		img, err := r.images.collectorImage(ctx, r.opts.CollectorBinary)
		if err != nil {
			return runtime.Infra{}, err
		}
		r.mu.Lock()
		r.collector = img
		r.mu.Unlock()
	}
	if err := r.loadChaosImage(ctx); err != nil {
		return runtime.Infra{}, err
	}
	s, err := r.spec()
	if err != nil {
		return runtime.Infra{}, err
	}
	if err := r.LoadInfraImages(ctx); err != nil {
		return runtime.Infra{}, err
	}
	objs, err := infraObjects(s)
	if err != nil {
		return runtime.Infra{}, err
	}
	if err := r.apply(ctx, objs); err != nil {
		return runtime.Infra{}, err
	}
	for _, o := range objs {
		switch w := o.(type) {
		case *appsv1.StatefulSet:
			err = r.waitReady(ctx, "statefulset "+w.Name, w.Spec.Selector.MatchLabels, int(ptr.Deref(w.Spec.Replicas, 1)))
		case *appsv1.Deployment:
			err = r.waitReady(ctx, "deployment "+w.Name, w.Spec.Selector.MatchLabels, int(ptr.Deref(w.Spec.Replicas, 1)))
		}
		if err != nil {
			return runtime.Infra{}, err
		}
	}
	inf := runtime.Infra{Services: runtime.Endpoints{
		Postgres: fmt.Sprintf("postgres:%d", gen.PostgresPort),
		NATSURL:  fmt.Sprintf("nats://nats:%d", gen.NATSPort),
		Etcd:     []string{fmt.Sprintf("http://etcd:%d", gen.EtcdPort)},
	}}
	if s.CollectorImage != "" {
		inf.Services.OTLP = fmt.Sprintf("http://%s:%d", gen.CollectorName, gen.CollectorPort)
	}
	fwd := func(port, remote int, pod string) (*forwarder, error) {
		l, err := listen(port)
		if err != nil {
			return nil, fmt.Errorf("port-forward to %s: %w", pod, err)
		}
		return r.forward(l, remote, func(context.Context) (string, error) { return pod, nil }), nil
	}
	var fs []*forwarder
	for _, f := range []struct {
		port, remote int
		pod          string
	}{
		{spec.PostgresPort, gen.PostgresPort, "postgres-0"},
		{spec.BrokerPort, gen.NATSPort, "nats-0"},
		{spec.RegistryPort, gen.EtcdPort, "etcd-0"},
	} {
		fw, err := fwd(f.port, f.remote, f.pod)
		if err != nil {
			for _, f := range fs {
				f.Close()
			}
			return runtime.Infra{}, err
		}
		fs = append(fs, fw)
	}
	if s.CollectorImage != "" {
		fw, err := r.startRelay(spec.OTLPHostAddr)
		if err != nil {
			for _, f := range fs {
				f.Close()
			}
			return runtime.Infra{}, fmt.Errorf("relay telemetry: %w", err)
		}
		fs = append(fs, fw)
	}
	inf.Host = runtime.Endpoints{
		Postgres: fs[0].Addr(),
		NATSURL:  "nats://" + fs[1].Addr(),
		Etcd:     []string{"http://" + fs[2].Addr()},
	}
	if spec.OTLPHostAddr != "" {
		inf.Host.OTLP = "http://" + spec.OTLPHostAddr
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.infra != nil { // a concurrent call won
		for _, f := range fs {
			f.Close()
		}
		return *r.infra, nil
	}
	r.forwards, r.infra = fs, &inf
	return inf, nil
}

// LoadInfraImages gets the infra images onto the node (StartInfra does it
// too): the first import of Postgres takes a while, which a caller with a
// tight deadline can do ahead.
func (r *Runtime) LoadInfraImages(ctx context.Context) error {
	for _, img := range []string{r.base.Postgres.Image, r.base.Broker.Image, r.base.Registry.Image} {
		if _, err := r.images.ensure(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// loadPasswords reads the passwords the cluster keeps from a previous run,
// so that kept data stays readable, and draws the superuser's otherwise.
func (r *Runtime) loadPasswords(ctx context.Context) error {
	secrets, err := r.cs.CoreV1().Secrets(r.ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{gen.LabelPartOf: gen.PartOf(r.base.Project)}.String(),
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return forbidden(fmt.Errorf("list secrets in %s: %w", r.ns, err), "list secrets", r.context)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if secrets != nil {
		for _, sec := range secrets.Items {
			pw := string(sec.Data["password"])
			switch user := string(sec.Data["username"]); {
			case pw == "":
			case user != "":
				r.dbs[user] = pw
			default:
				r.adminPW = pw
			}
		}
	}
	if r.adminPW == "" {
		if r.adminPW, err = gen.NewPassword(); err != nil {
			return err
		}
	}
	return nil
}

// EnsureDatabase applies the service's Secret and provisioning Job and
// waits until the Job created its role and database.
func (r *Runtime) EnsureDatabase(ctx context.Context, service string) (string, error) {
	r.mu.Lock()
	if r.infra == nil {
		r.mu.Unlock()
		return "", errors.New("ensure database: infra is not started")
	}
	r.mu.Unlock()
	if _, err := r.passwordFor(service); err != nil {
		return "", err
	}
	s, err := r.spec()
	if err != nil {
		return "", err
	}
	objs, _, err := serviceObjects(s, service)
	if err != nil {
		return "", err
	}
	if err := r.apply(ctx, objs); err != nil {
		return "", err
	}
	for _, o := range objs {
		if j, ok := o.(*batchv1.Job); ok {
			if err := r.waitJob(ctx, j); err != nil {
				return "", err
			}
		}
	}
	pw, _ := r.passwordFor(service)
	return gen.DSN(service, pw), nil
}

func (r *Runtime) passwordFor(service string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passwordLocked(service)
}

// waitJob waits for a Job to succeed, reporting its pods' problems (an
// image that cannot be pulled, a crash loop) as they appear.
func (r *Runtime) waitJob(ctx context.Context, j *batchv1.Job) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		cur, err := r.cs.BatchV1().Jobs(r.ns).Get(ctx, j.Name, metav1.GetOptions{})
		switch {
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("job %s/%s: %w", r.ns, j.Name, err)
		case err != nil: // finished and collected (TTL): it succeeded before
			return nil
		case cur.Status.Succeeded > 0:
			return nil
		}
		for _, c := range cur.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return fmt.Errorf("job %s/%s failed: %s", r.ns, j.Name, c.Message)
			}
		}
		if err := r.diagnosePods(ctx, j.Spec.Template.Labels); err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("job %s/%s did not finish within %s: %w", r.ns, j.Name, readyTimeout, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// waitReady waits until want pods matching sel are ready.
func (r *Runtime) waitReady(ctx context.Context, what string, sel map[string]string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		pods, err := r.cs.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set(sel).String()})
		if err != nil {
			return fmt.Errorf("%s: list pods: %w", what, err)
		}
		ready := 0
		for i := range pods.Items {
			p := &pods.Items[i]
			if podReady(p) {
				ready++
				continue
			}
			if err := diagnose(ctx, r.cs, p, time.Now()); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if ready >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %d of %d pods ready after %s (kubectl -n %s describe pods shows why): %w", what, ready, want, readyTimeout, r.ns, errNotReady)
		case <-time.After(pollEvery):
		}
	}
}

func (r *Runtime) diagnosePods(ctx context.Context, sel map[string]string) error {
	pods, err := r.cs.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set(sel).String()})
	if err != nil {
		return err
	}
	for i := range pods.Items {
		if err := diagnose(ctx, r.cs, &pods.Items[i], time.Now()); err != nil {
			return err
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// StopInfra scales the infra workloads to zero, keeping their claims, and
// closes the port-forwards.
func (r *Runtime) StopInfra(ctx context.Context, grace time.Duration) error {
	r.closeForwards()
	r.mu.Lock()
	r.infra = nil
	r.mu.Unlock()
	scale := []byte(`{"spec":{"replicas":0}}`)
	sel := metav1.ListOptions{LabelSelector: labels.Set{gen.LabelPartOf: gen.PartOf(r.base.Project), gen.LabelComponent: gen.ComponentInfra}.String()}
	var errs []error
	sts, err := r.cs.AppsV1().StatefulSets(r.ns).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("stop infra: %w", err)
	}
	for _, s := range sts.Items {
		_, err := r.cs.AppsV1().StatefulSets(r.ns).Patch(ctx, s.Name, types.MergePatchType, scale, metav1.PatchOptions{FieldManager: fieldManager})
		errs = append(errs, err)
	}
	deps, err := r.cs.AppsV1().Deployments(r.ns).List(ctx, sel)
	if err == nil {
		for _, d := range deps.Items {
			_, err := r.cs.AppsV1().Deployments(r.ns).Patch(ctx, d.Name, types.MergePatchType, scale, metav1.PatchOptions{FieldManager: fieldManager})
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop infra: %w", err)
	}
	return r.waitNoPods(ctx, sel.LabelSelector, grace+30*time.Second)
}

func (r *Runtime) closeForwards() {
	r.mu.Lock()
	fs := r.forwards
	r.forwards = nil
	r.mu.Unlock()
	for _, f := range fs {
		f.Close()
	}
}

// waitNoPods waits until no pod matches the selector.
func (r *Runtime) waitNoPods(ctx context.Context, sel string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		pods, err := r.cs.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pods %s in %s still exist after %s", sel, r.ns, within)
		case <-time.After(pollEvery):
		}
	}
}
