package kubernetes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/otlphttp"
)

// The in-cluster collector is msctl itself (`msctl agent collect`): services
// export OTLP/HTTP to it, and the agent's runtime reads what it buffered
// through a port-forward and hands it to the agent's own OTLP receiver.
// No pod ever dials the developer's machine.

// collectorBuffer is how many exports the collector keeps for a reader
// that is behind; older ones are dropped.
const collectorBuffer = 2000

// maxExport bounds one OTLP request body.
const maxExport = 8 << 20

// Export is one OTLP/HTTP request the collector received, as it came.
type Export struct {
	Seq int64 `json:"seq"`
	// Path is the signal's path, /v1/traces or /v1/metrics; the relay posts
	// the body to the same path of the agent's receiver.
	Path        string `json:"path"`
	ContentType string `json:"contentType"`
	Body        []byte `json:"body"`
}

// Exports is the answer of GET /spans: the exports after the asked
// sequence number, and the collector's boot id (a restarted collector
// numbers from 1 again).
type Exports struct {
	Boot    string   `json:"boot"`
	Exports []Export `json:"exports"`
}

// Collector buffers OTLP exports for the agent to fetch.
type Collector struct {
	boot string
	mu   sync.Mutex
	seq  int64
	buf  []Export
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Collector{boot: hex.EncodeToString(b)}
}

// ServeHTTP answers POST /v1/traces and /v1/metrics (OTLP/HTTP, protobuf
// or JSON, maybe gzip) and GET /spans?after=N (every signal's exports: the
// path predates metrics).
func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && (r.URL.Path == "/v1/traces" || r.URL.Path == "/v1/metrics"):
		c.receive(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/spans":
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		c.mu.Lock()
		out := Exports{Boot: c.boot, Exports: []Export{}}
		for _, e := range c.buf {
			if e.Seq > after {
				out.Exports = append(out.Exports, e)
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

func (c *Collector) receive(w http.ResponseWriter, r *http.Request) {
	data, ok := otlphttp.ReadBody(w, r, maxExport)
	if !ok {
		return
	}
	ct := r.Header.Get("Content-Type")
	c.mu.Lock()
	c.seq++
	c.buf = append(c.buf, Export{Seq: c.seq, Path: r.URL.Path, ContentType: ct, Body: data})
	if len(c.buf) > collectorBuffer {
		c.buf = c.buf[len(c.buf)-collectorBuffer:]
	}
	c.mu.Unlock()
	// An empty Export{Trace,Metrics}ServiceResponse: zero bytes in
	// protobuf, {} in JSON.
	w.Header().Set("Content-Type", ct)
	if ct == "application/json" {
		_, _ = w.Write([]byte("{}"))
	}
}

// readyPodOf answers, per connection of a port-forward, a ready pod of
// the infra component name (a Deployment's pods change names).
func (r *Runtime) readyPodOf(name string) func(ctx context.Context) (string, error) {
	sel := labels.Set{gen.LabelPartOf: gen.PartOf(r.base.Project), gen.LabelName: name}.String()
	return func(ctx context.Context) (string, error) {
		pods, err := r.cs.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return "", err
		}
		for i := range pods.Items {
			if podReady(&pods.Items[i]) {
				return pods.Items[i].Name, nil
			}
		}
		return "", fmt.Errorf("no ready %s pod", name)
	}
}

// relayEvery is how often the runtime fetches the collector's exports.
const relayEvery = time.Second

// relay copies the collector's exports to the agent's OTLP receiver at
// to until ctx ends.
func relay(ctx context.Context, fetch func(ctx context.Context, after int64) (Exports, error), to string) {
	var boot string
	var after int64
	client := &http.Client{Timeout: 10 * time.Second}
	for {
		got, err := fetch(ctx, after)
		if err == nil {
			if got.Boot != boot {
				boot, after = got.Boot, 0
				got, err = fetch(ctx, 0)
			}
		}
		if err == nil {
			for _, e := range got.Exports {
				req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+to+e.Path, bytes.NewReader(e.Body))
				if rerr != nil {
					break
				}
				req.Header.Set("Content-Type", e.ContentType)
				if resp, perr := client.Do(req); perr == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				after = e.Seq
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(relayEvery):
		}
	}
}

// startRelay forwards to the collector's pod and relays its exports to
// the agent's receiver at to, for as long as the runtime lives.
func (r *Runtime) startRelay(to string) (*forwarder, error) {
	l, err := listen(0)
	if err != nil {
		return nil, err
	}
	f := r.forward(l, gen.CollectorPort, r.readyPodOf(gen.CollectorName))
	client := &http.Client{Timeout: 10 * time.Second}
	fetch := func(ctx context.Context, after int64) (Exports, error) {
		var out Exports
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.Addr()+"/spans?after="+strconv.FormatInt(after, 10), nil)
		if err != nil {
			return out, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return out, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return out, fmt.Errorf("collector: %s", resp.Status)
		}
		return out, json.NewDecoder(resp.Body).Decode(&out)
	}
	go relay(f.ctx, fetch, to)
	return f, nil
}
