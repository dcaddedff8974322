package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/msctl/msctl/services/gateway/ratelimit"
	"github.com/msctl/msctl/services/gateway/routes"
	"github.com/msctl/msctl/services/gateway/summary"
	"github.com/msctl/msctl/services/gateway/upstream"
	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/kit/registry"
)

// BenchmarkGatewayProxy sends the same small GET straight to a trivial upstream
// and through the gateway (full kit middleware, routing, rate limit, breaker
// client), alternating, and reports the latency the gateway adds.
func BenchmarkGatewayProxy(b *testing.B) {
	payload := []byte(`[{"id":"p1","sku":"SKU-1","name":"Widget","price_cents":1999,"stock":10}]`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	}))
	defer up.Close()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	table, err := routes.Parse("/api/v1/products=inventory:public")
	if err != nil {
		b.Fatal(err)
	}
	picker := registry.NewStatic(map[string][]string{"inventory": {up.Listener.Addr().String()}})
	pool := upstream.NewPool(picker, []string{"inventory"}, client.Options{})
	g := &Gateway{
		Routes:   table,
		Verifier: auth.NewVerifier(auth.NewKeyCache(poolJWKS{pool}, time.Minute, log), "i", "a"),
		Limiter:  ratelimit.New(ratelimit.Options{RPS: 1e9, Burst: 1e9}),
		Upstream: pool,
		Summary:  summary.New(pool, time.Second, log),
		Log:      log,
	}
	srv := httpx.New(httpx.Options{Service: "gateway", Logger: log})
	g.Register(srv.Mux)
	gw := httptest.NewServer(srv.Handler())
	defer gw.Close()

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(url string) time.Duration {
		start := time.Now()
		resp, err := hc.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		return time.Since(start)
	}
	direct, via := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	get(up.URL + "/api/v1/products")
	get(gw.URL + "/api/v1/products")
	b.ResetTimer()
	for range b.N {
		direct = append(direct, get(up.URL+"/api/v1/products"))
		via = append(via, get(gw.URL+"/api/v1/products"))
	}
	b.StopTimer()
	slices.Sort(direct)
	slices.Sort(via)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds())
	}
	b.ReportMetric(pct(direct, 0.5), "direct-p50-µs")
	b.ReportMetric(pct(via, 0.5), "gateway-p50-µs")
	b.ReportMetric(pct(via, 0.5)-pct(direct, 0.5), "added-p50-µs")
	b.ReportMetric(pct(via, 0.99)-pct(direct, 0.99), "added-p99-µs")
}
