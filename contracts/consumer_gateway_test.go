//go:build contracts

package contracts

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pact-foundation/pact-go/v2/consumer"

	"github.com/msctl/msctl/services/gateway/api"
	"github.com/msctl/msctl/services/gateway/ratelimit"
	"github.com/msctl/msctl/services/gateway/routes"
	"github.com/msctl/msctl/services/gateway/summary"
	"github.com/msctl/msctl/services/gateway/upstream"
	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/registry"
)

// gatewayRoutes is the bundled system's GATEWAY_ROUTES (see msctl.yaml).
const gatewayRoutes = "/api/v1/auth=users:public,/api/v1/products=inventory:public," +
	"/api/v1/orders=orders:auth,/api/v1/notifications=notifications:auth"

// Example values the gateway's pacts use.
const (
	exampleUserID  = "0b7d3f7e-5d9a-4c55-9a39-0c3e6b1c2f10"
	exampleOrderID = "01968a3e-7b8c-7d2e-9f10-2b3c4d5e6f70"
	exampleProduct = "bf16a7f8-dad1-48c7-9049-62fbe5440f29" // seeded keyboard
	// exampleToken has a JWT's shape; providers verify the one their state signs.
	exampleToken = "eyJhbGciOiJFZERTQSIsImtpZCI6ImV4YW1wbGUifQ.eyJzdWIiOiJleGFtcGxlIn0.c2lnbmF0dXJl"
)

// signedIn stands in for the JWT check (tested in services/kit/auth):
// contracts are about what the gateway sends upstream once it knows the user.
type signedIn string

func (s signedIn) Verify(context.Context, string) (string, error) { return string(s), nil }

var _ api.Verifier = signedIn("")

// gateway is the real gateway HTTP surface (routing, proxy, summary) whose
// upstreams are the given Pact mock servers.
type gateway struct {
	handler http.Handler
	picker  registry.Picker
}

func newGateway(t *testing.T, upstreams map[string]consumer.MockServerConfig) *gateway {
	t.Helper()
	addrs := map[string][]string{}
	for svc, m := range upstreams {
		addrs[svc] = []string{fmt.Sprintf("%s:%d", m.Host, m.Port)}
	}
	table, err := routes.Parse(gatewayRoutes)
	if err != nil {
		t.Fatal(err)
	}
	services := append(table.Services(), summary.Services...)
	// No retries: a contract test must see exactly the requests the code makes.
	picker := registry.NewStatic(addrs)
	pool := upstream.NewPool(picker, services, client.Options{Timeout: 10 * time.Second, Retries: -1})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &api.Gateway{
		Routes:   table,
		Verifier: signedIn(exampleUserID),
		Limiter:  ratelimit.New(ratelimit.Options{RPS: 1000, Burst: 1000}),
		Upstream: pool,
		Summary:  summary.New(pool, 10*time.Second, log),
		Log:      log,
	}
	mux := http.NewServeMux()
	g.Register(mux)
	return &gateway{handler: mux, picker: picker}
}

// do sends one request through the gateway as a client would.
func (g *gateway) do(method, path, body string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "127.0.0.1:50000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+exampleToken)
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	return rec
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) error {
	t.Helper()
	if rec.Code != want {
		return fmt.Errorf("status %d, want %d: %s", rec.Code, want, rec.Body.String())
	}
	return nil
}
