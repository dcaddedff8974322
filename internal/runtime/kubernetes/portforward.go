package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/msctl/msctl/internal/runtime"
)

// forwarder is a listener on 127.0.0.1 whose every connection becomes one
// port-forward stream to a pod through the API server. The pod is resolved
// per connection, so a forward to an infra component follows its pod when
// it is replaced; client-go's PortForwarder binds one pod for its life.
type forwarder struct {
	l    net.Listener
	pod  func(ctx context.Context) (string, error)
	port int
	r    *Runtime

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// listen binds 127.0.0.1:port (0 picks a free one); a taken fixed port is a
// PortInUseError, as on the other runtimes.
func listen(port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil && port != 0 && errors.Is(err, syscall.EADDRINUSE) {
		return nil, &runtime.PortInUseError{Port: port}
	}
	return l, err
}

// forward starts serving l, forwarding to port of the pod that pod names.
func (r *Runtime) forward(l net.Listener, port int, pod func(ctx context.Context) (string, error)) *forwarder {
	ctx, cancel := context.WithCancel(r.ctx)
	f := &forwarder{l: l, pod: pod, port: port, r: r, ctx: ctx, cancel: cancel}
	f.wg.Go(f.serve)
	return f
}

// Addr is the host:port the host dials.
func (f *forwarder) Addr() string { return f.l.Addr().String() }

// Close stops accepting, cuts the forwarded connections and waits for
// them to end.
func (f *forwarder) Close() {
	f.stop()
	f.wg.Wait()
}

// stop is Close without the wait, for callers that must not block on a
// connection still draining.
func (f *forwarder) stop() {
	f.cancel()
	_ = f.l.Close()
}

func (f *forwarder) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() {
			defer c.Close()
			if err := f.pipe(c); err != nil {
				f.r.log.Debug("port-forward", "port", f.port, "err", err)
			}
		})
	}
}

// pipe opens one SPDY connection to the pod's portforward subresource and
// copies c through its data stream.
func (f *forwarder) pipe(c net.Conn) error {
	pod, err := f.pod(f.ctx)
	if err != nil {
		return err
	}
	transport, upgrader, err := spdy.RoundTripperFor(f.r.rest)
	if err != nil {
		return err
	}
	url := f.r.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(f.r.ns).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	conn, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return forbidden(fmt.Errorf("port-forward to pod %s/%s: %w", f.r.ns, pod, err), "port-forward to pods", f.r.context)
	}
	defer conn.Close()
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(f.port))
	h.Set(corev1.PortForwardRequestIDHeader, "0")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return err
	}
	_ = errStream.Close() // nothing to send; the kubelet writes dial errors
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-f.ctx.Done():
		case <-conn.CloseChan():
		}
		_ = c.Close()
		_ = conn.Close()
	}()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, data)
		close(done)
	}()
	go func() {
		_, _ = io.Copy(data, c)
		_ = data.Close() // half-close: the pod sees EOF
	}()
	errMsg := make(chan []byte, 1)
	go func() {
		msg, _ := io.ReadAll(errStream)
		errMsg <- msg
	}()
	<-done
	var msg []byte
	select {
	case msg = <-errMsg:
	default:
	}
	if len(msg) > 0 {
		return fmt.Errorf("port-forward to pod %s/%s:%d: %s", f.r.ns, pod, f.port, msg)
	}
	return nil
}
