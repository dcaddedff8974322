package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// Readiness probing: a starting instance is probed every startProbe, so
// that up and its dependents learn of readiness within a few tens of
// milliseconds (a refused connection costs next to nothing); a ready one
// once every readyProbe.
const (
	startProbe = 25 * time.Millisecond
	readyProbe = time.Second
)

// watch probes inst until it exits or supervision stops: quickly until it is
// ready, then once a second.
func (o *Orchestrator) watch(ctx context.Context, c *component, in *instance, inst runtime.Instance) {
	ep, path := inst.Info().Endpoint, c.svc.Health
	delay := startProbe
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-inst.Done():
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := o.probe(ctx, inst, ep, path)
		select {
		case <-inst.Done():
			return
		default:
		}
		o.mu.Lock()
		switch {
		case err == nil:
			in.fails = 0
			if !in.everReady {
				o.log.Info("instance ready", "service", c.name, "after", time.Since(inst.Info().StartedAt).Round(time.Millisecond))
			}
			in.everReady = true
			o.setInstLocked(c, in, state.StateHealthy, "ok")
			delay = readyProbe
		case in.state == state.StateHealthy || in.state == state.StateUnhealthy:
			in.fails++
			if in.fails >= unhealthyAfter {
				o.setInstLocked(c, in, state.StateUnhealthy, err.Error())
			} else {
				in.health = err.Error()
			}
		default:
			in.health = err.Error()
			c.health = err.Error()
			delay = startProbe
		}
		o.mu.Unlock()
		t.Reset(delay)
	}
}

// errNotInService is the probe result of a runtime.Routed instance the
// platform sends no traffic to yet (or any more).
var errNotInService = errors.New("not in service yet: the runtime routes no traffic to it (for kubernetes: the pod is not Ready)")

// probe checks one instance: the runtime's word on whether traffic reaches
// it first (no I/O), then its health endpoint.
func (o *Orchestrator) probe(ctx context.Context, inst runtime.Instance, ep, path string) error {
	if r, ok := inst.(runtime.Routed); ok && !r.InService() {
		return errNotInService
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return o.opts.Probe(ctx, ep, path)
}

var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func httpProbe(ctx context.Context, endpoint, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+path, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %w", path, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}

func dialProbe(ctx context.Context, addr string) error {
	if addr == "" {
		return errors.New("no endpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// hostOf strips the scheme of a URL, leaving host:port.
func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
