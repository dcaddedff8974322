package kubernetes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/runtime"
)

// logDrain bounds how long an exited instance's Done waits for the last
// lines of its log streams.
const logDrain = 5 * time.Second

// Start applies the service's objects and runs the instance as one pod
// made from the generated Deployment's template, reachable on the host
// through a port-forward. It returns once the container runs.
func (r *Runtime) Start(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	r.mu.Lock()
	_, ok := r.built[spec.Service]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("start %s: %w", spec.Service, runtime.ErrNotBuilt)
	}
	l, err := listen(spec.HostPort)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Instance, err)
	}
	in, err := r.start(ctx, spec, l)
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Instance, err)
	}
	return in, nil
}

func (r *Runtime) start(ctx context.Context, spec runtime.Spec, l net.Listener) (*instance, error) {
	s, err := r.spec()
	if err != nil {
		return nil, err
	}
	known := false
	for i := range s.Services {
		if s.Services[i].Name == spec.Service {
			s.Services[i].Env = spec.Env
			known = true
		}
	}
	if !known {
		r.mu.Lock()
		img := r.built[spec.Service]
		r.mu.Unlock()
		s.Services = append(s.Services, gen.ServiceSpec{Name: spec.Service, Image: img, Replicas: 1, Health: "/readyz", Env: spec.Env})
	}
	objs, deploy, err := serviceObjects(s, spec.Service)
	if err != nil {
		return nil, err
	}
	if err := r.apply(ctx, objs); err != nil {
		return nil, err
	}
	pod := instancePod(deploy, podName(spec.Instance), podName(spec.Instance))
	pods := r.cs.CoreV1().Pods(r.ns)
	// A pod of that name is a leftover of a run that died: replace it.
	if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err == nil {
		if err := r.waitPodGone(ctx, pod.Name); err != nil {
			return nil, err
		}
	}
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		return nil, forbidden(fmt.Errorf("create pod %s/%s: %w", r.ns, pod.Name, err), "create pods", r.context)
	}
	in := &instance{
		r: r, pod: created.Name, done: make(chan struct{}), output: spec.Output,
		info: runtime.InstanceInfo{ID: spec.Instance, Container: created.Name},
	}
	if in.output == nil {
		in.output = func(string, string) {}
	}
	running, err := r.waitRunning(ctx, created)
	if err != nil {
		_ = pods.Delete(context.Background(), created.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		return nil, err
	}
	in.info.StartedAt = time.Now()
	if cs := running.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Running != nil {
		in.info.StartedAt = cs[0].State.Running.StartedAt.Time
	}
	in.ready.Store(podReady(running))
	in.fwd = r.forward(l, gen.ServicePort, func(context.Context) (string, error) { return in.pod, nil })
	in.info.Endpoint = in.fwd.Addr()
	in.follow(running.ResourceVersion)
	return in, nil
}

// podName is an instance id as a DNS-1123 name.
func podName(instance string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(instance) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}

// waitRunning waits until the pod's container runs or has already ended,
// reporting what waiting cannot fix.
func (r *Runtime) waitRunning(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		p, err := r.cs.CoreV1().Pods(r.ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", r.ns, pod.Name, err)
		}
		if cs := p.Status.ContainerStatuses; len(cs) > 0 && (cs[0].State.Running != nil || cs[0].State.Terminated != nil) {
			return p, nil
		}
		if err := diagnose(ctx, r.cs, p, time.Now()); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pod %s/%s not running after %s (kubectl -n %s describe pod %s shows why): %w", r.ns, pod.Name, readyTimeout, r.ns, pod.Name, errNotReady)
		case <-time.After(pollEvery):
		}
	}
}

func (r *Runtime) waitPodGone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, namespaceGoneTimeout)
	defer cancel()
	for {
		if _, err := r.cs.CoreV1().Pods(r.ns).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s/%s still exists after %s", r.ns, name, namespaceGoneTimeout)
		case <-time.After(pollEvery):
		}
	}
}

// instance is one pod of a service.
type instance struct {
	r      *Runtime
	pod    string
	info   runtime.InstanceInfo
	fwd    *forwarder
	output func(stream, line string)

	// ready is podReady as the pod watch last saw it (Ready, not deleted).
	ready atomic.Bool

	mu   sync.Mutex
	exit runtime.Exit
	done chan struct{}
	logs sync.WaitGroup
}

var _ runtime.Routed = (*instance)(nil)

func (in *instance) Info() runtime.InstanceInfo { return in.info }
func (in *instance) Done() <-chan struct{}      { return in.done }

// InService is the pod's Ready condition (runtime.Routed): the kubelet's
// readiness probe passed, so the EndpointSlice controller lists the pod as
// ready and its Service sends it connections. The Ready condition rather
// than the EndpointSlice because it is what the EndpointSlice follows
// (within milliseconds), is on the pod this instance watches anyway, and
// needs no permission beyond the pods the runtime already reads. What
// follows both (kube-proxy programming the node, seconds later) is
// covered on the other side: the pod a replacement stops next keeps
// serving through gen's preStop sleep while it leaves the endpoints.
func (in *instance) InService() bool { return in.ready.Load() }

func (in *instance) Exit() runtime.Exit {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.exit
}

// Stop deletes the pod with the grace period (the kubelet sends SIGTERM
// after the pod's preStop sleep of gen.LeaveDelay, then SIGKILL) and returns
// once the pod is gone. The grace is counted from SIGTERM, as on the other
// runtimes: the pod's deletion grace adds the sleep.
func (in *instance) Stop(ctx context.Context, grace time.Duration) error {
	defer in.fwd.Close()
	select {
	case <-in.done:
		return nil
	default:
	}
	secs := int64(math.Ceil((gen.LeaveDelay + grace).Seconds()))
	err := in.r.cs.CoreV1().Pods(in.r.ns).Delete(ctx, in.pod, metav1.DeleteOptions{GracePeriodSeconds: &secs})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("stop %s: delete pod %s/%s: %w", in.info.ID, in.r.ns, in.pod, err)
	}
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", in.info.ID, ctx.Err())
	}
}

// follow streams the container's output and watches the pod until its
// container terminated or the pod is gone, then closes done.
func (in *instance) follow(rv string) {
	in.followLogs()
	go func() {
		ex := in.watch(rv)
		drained := make(chan struct{})
		go func() { in.logs.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(logDrain):
		}
		in.mu.Lock()
		in.exit = ex
		in.mu.Unlock()
		// An exited instance's pod is of no further use: the
		// orchestrator starts a new instance, with a new pod.
		_ = in.r.cs.CoreV1().Pods(in.r.ns).Delete(context.Background(), in.pod, metav1.DeleteOptions{})
		in.fwd.stop()
		close(in.done)
	}()
}

// watch returns how the pod's container ended.
func (in *instance) watch(rv string) runtime.Exit {
	pods := in.r.stream.CoreV1().Pods(in.r.ns)
	for {
		w, err := pods.Watch(in.r.ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", in.pod).String(), ResourceVersion: rv,
		})
		if err != nil {
			if in.r.ctx.Err() != nil {
				return runtime.Exit{Code: -1, Err: errors.New("runtime closed"), At: time.Now()}
			}
			// An expired resource version: look at the pod as it is now.
			p, gerr := pods.Get(in.r.ctx, in.pod, metav1.GetOptions{})
			if apierrors.IsNotFound(gerr) {
				return runtime.Exit{Code: -1, Err: errors.New("pod deleted"), At: time.Now()}
			}
			if gerr == nil {
				if ex, ok := terminated(p); ok {
					return ex
				}
				in.ready.Store(podReady(p))
				rv = p.ResourceVersion
			}
			select { // the API server is briefly away; retry
			case <-in.r.ctx.Done():
			case <-time.After(pollEvery):
			}
			continue
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = p.ResourceVersion
			in.ready.Store(podReady(p))
			if ex, ok := terminated(p); ok {
				w.Stop()
				return ex
			}
			if ev.Type == watch.Deleted {
				w.Stop()
				return runtime.Exit{Code: -1, Err: errors.New("pod deleted"), At: time.Now()}
			}
		}
	}
}

func terminated(p *corev1.Pod) (runtime.Exit, bool) {
	for _, c := range p.Status.ContainerStatuses {
		if t := c.State.Terminated; t != nil {
			return runtime.Exit{Code: int(t.ExitCode), At: t.FinishedAt.Time}, true
		}
	}
	return runtime.Exit{}, false
}

// followLogs streams stdout and stderr apart where the cluster can split
// them (PodLogsQuerySplitStreams), else both as stdout. Each stream is
// opened in the background: with split streams the API server answers a
// follow request only once the container has written to that stream, and a
// service that never writes to stderr must not hold up Start.
func (in *instance) followLogs() {
	in.logs.Go(func() {
		rc, err := in.logStream(ptr.To(corev1.LogStreamStdout))
		if splitUnsupported(err) {
			rc, err = in.logStream(nil)
		}
		in.copyLines(rc, err, "stdout")
	})
	in.logs.Go(func() {
		rc, err := in.logStream(ptr.To(corev1.LogStreamStderr))
		if splitUnsupported(err) {
			return // the stdout follower has both
		}
		in.copyLines(rc, err, "stderr")
	})
}

// splitUnsupported tells the answer of a cluster that cannot select one
// log stream: it refuses the stream field as invalid.
func splitUnsupported(err error) bool {
	return apierrors.IsBadRequest(err) || apierrors.IsInvalid(err)
}

func (in *instance) logStream(stream *string) (io.ReadCloser, error) {
	return in.r.stream.CoreV1().Pods(in.r.ns).GetLogs(in.pod, &corev1.PodLogOptions{Follow: true, Stream: stream}).Stream(in.r.ctx)
}

func (in *instance) copyLines(rc io.ReadCloser, err error, stream string) {
	if err != nil {
		if in.r.ctx.Err() == nil {
			in.output("stderr", "msctl: cannot follow the pod's "+stream+": "+err.Error())
		}
		return
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		in.output(stream, sc.Text())
	}
}
