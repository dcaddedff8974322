package kubernetes_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/agent/agenttest"
	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// TestShopOnKubernetes runs the whole shop with `up -d --runtime
// kubernetes` and uses it through the gateway's port-forward: the saga
// confirms and compensates, a killed service pod is replaced (the registry
// follows), the order's trace reaches the agent through the in-cluster
// collector, chaos latency on an edge slows the gateway through the
// in-cluster proxy, and `down --volumes` leaves no namespace.
func TestShopOnKubernetes(t *testing.T) {
	_, cs := useCluster(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	project := "k" + hex.EncodeToString(b)
	shop := testenv.NewShop(t, staticMsctl(t), project)
	shop.Timeout = 10 * time.Minute
	ns := gen.DefaultNamespace(project)
	downAtCleanup(t, func() { shop.Run(t, "down", "--volumes") }, cs, ns)

	shop.Must(t, "up", "-d", "--runtime", "kubernetes")
	api := shop.Gateway(t)
	token := api.SignIn("k8s-"+project+"@example.com", "K8s")
	p := api.InStock(10)
	traceID := hex.EncodeToString(randomBytes(16))
	ok := api.PlaceOrder(token, p.ID, testenv.GoodCard, 1, http.Header{
		"Traceparent": {"00-" + traceID + "-" + hex.EncodeToString(randomBytes(8)) + "-01"},
	})
	if o := api.Settle(token, ok, time.Minute); o.Status != "CONFIRMED" {
		t.Fatalf("order with a good card: %+v, want CONFIRMED", o)
	}
	before := stockOf(t, api, p.ID)
	bad := api.PlaceOrder(token, p.ID, testenv.DeclinedCard, 1, nil)
	if o := api.Settle(token, bad, time.Minute); o.Status != "CANCELLED" {
		t.Errorf("order with a declined card: %+v, want CANCELLED", o)
	}
	testenv.Until(t, 30*time.Second, "stock restored", func() bool { return stockOf(t, api, p.ID) == before })
	testenv.Until(t, 30*time.Second, "summary with its notification", func() bool {
		var sum struct {
			Order         testenv.Order `json:"order"`
			Notifications []struct {
				OrderID string `json:"order_id"`
			} `json:"notifications"`
		}
		return api.Do("GET", "/api/v1/orders/"+ok+"/summary", token, nil, &sum) == http.StatusOK &&
			sum.Order.Status == "CONFIRMED" && len(sum.Notifications) > 0
	})

	testenv.Until(t, 30*time.Second, "the order in its owner's list (the read model)", func() bool {
		var list []testenv.Order
		if api.Do("GET", "/api/v1/orders", token, nil, &list) != http.StatusOK {
			return false
		}
		for _, o := range list {
			if o.ID == ok && o.Status == "CONFIRMED" {
				return true
			}
		}
		return false
	})

	// The services' metrics and the broker's events reach the agent from
	// the cluster as from the other runtimes: the two orders are counted.
	t.Run("MetricsAndEventsReachTheAgent", func(t *testing.T) {
		agenttest.MetricsReflectLoad(t, shop.Dir, state.Metrics{}, agenttest.OrderLoads(2)...)
		agenttest.EventsCountedOnce(t, shop.Dir)
	})

	t.Run("PsLogsRestartAndIdempotentUp", func(t *testing.T) {
		for _, c := range shop.PS(t) {
			if c.State != state.StateHealthy {
				t.Errorf("ps: %s is %s (%s)", c.Name, c.State, c.Health)
			}
		}
		if out := shop.Must(t, "logs", "orders").Stdout; !strings.Contains(out, "orders") {
			t.Errorf("logs orders: %q", out)
		}
		shop.Must(t, "restart", "payments")
		// Postgres's pod is replaced with its claim; the services reconnect.
		shop.Must(t, "restart", "postgres")
		if pg := shop.Components(t)["postgres"]; pg.Restarts != 1 || pg.State != state.StateHealthy {
			t.Errorf("postgres after restart: %+v, want healthy with 1 restart", pg)
		}
		if o := api.Settle(token, ok, time.Minute); o.Status != "CONFIRMED" {
			t.Errorf("the order written before restart postgres reads %+v", o)
		}
		again := api.PlaceOrder(token, p.ID, testenv.GoodCard, 1, nil)
		if o := api.Settle(token, again, time.Minute); o.Status != "CONFIRMED" {
			t.Errorf("order after restart payments and postgres: %+v, want CONFIRMED", o)
		}
		if r := shop.Must(t, "up", "-d", "--runtime", "kubernetes"); !strings.Contains(r.Stderr, "nothing changed") {
			t.Errorf("second up: %s", r.Stderr)
		}
	})

	t.Run("TraceReachesTheAgent", func(t *testing.T) {
		c, err := agent.Connect(shop.Dir)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, time.Minute, "trace "+traceID+" in the agent", func() error {
			spans, err := c.Trace(t.Context(), traceID)
			if err != nil || len(spans) == 0 {
				return fmt.Errorf("%d spans, err %v", len(spans), err)
			}
			return nil
		})
	})

	// The dashboard renders the agent's snapshot: each panel's data must
	// arrive from the cluster as it does from the other runtimes.
	t.Run("SnapshotFeedsEveryPanel", func(t *testing.T) {
		testenv.Eventually(t, time.Minute, "registry, breakers, traces and events in the snapshot", func() error {
			snap := agenttest.Snapshot(t, shop.Dir)
			for _, svc := range []string{"gateway", "users", "inventory", "orders", "payments", "notifications"} {
				if len(snap.Registry[svc]) == 0 {
					return fmt.Errorf("registry has no instance of %s: %v", svc, snap.Registry)
				}
			}
			var gatewayBreakers int
			for _, b := range snap.Breakers {
				if b.Service == "gateway" {
					gatewayBreakers++
				}
			}
			switch {
			case gatewayBreakers == 0:
				return fmt.Errorf("no breaker of the gateway: %+v", snap.Breakers)
			case len(snap.Traces) == 0:
				return fmt.Errorf("no traces")
			case len(snap.Events) == 0:
				return fmt.Errorf("no broker events")
			}
			return nil
		})
	})

	t.Run("DLQThroughThePortForward", func(t *testing.T) { agenttest.ParkAndDrop(t, shop.Dir) })

	// The chaos proxy runs in the cluster (msctl-chaos): a fault added
	// through the agent slows the edge it names, and no longer once removed.
	t.Run("ChaosLatencyOnAnEdge", func(t *testing.T) {
		shop.CheckLatencyOnGatewayToOrders(t, api, token, ok, 500*time.Millisecond)
	})

	t.Run("KilledPodIsReplaced", func(t *testing.T) {
		sel := labels.Set{gen.LabelName: "orders", gen.LabelComponent: gen.ComponentService}.String()
		pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: sel})
		if err != nil || len(pods.Items) == 0 {
			t.Fatalf("orders pods: %v, %v", pods, err)
		}
		killed := pods.Items[0].Name
		zero := int64(0)
		if err := cs.CoreV1().Pods(ns).Delete(t.Context(), killed, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 2*time.Minute, "a new orders pod, and orders through the gateway again", func() error {
			pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return err
			}
			var names []string
			for _, p := range pods.Items {
				names = append(names, p.Name)
			}
			if len(pods.Items) == 0 || strings.Contains(strings.Join(names, ","), killed) {
				return fmt.Errorf("orders pods %v", names)
			}
			var o testenv.Order
			if code := api.Do("GET", "/api/v1/orders/"+ok, token, nil, &o); code != http.StatusOK {
				return fmt.Errorf("GET order: %d", code)
			}
			// The registry follows: the killed pod deregistered (or its
			// lease lapsed) and its replacement registered under its own
			// name, which is the pod's (INSTANCE_ID).
			var ids []string
			for _, in := range agenttest.Snapshot(t, shop.Dir).Registry["orders"] {
				ids = append(ids, in.ID)
			}
			if len(ids) == 0 || slices.Contains(ids, killed) {
				return fmt.Errorf("registry instances of orders: %v (killed %s)", ids, killed)
			}
			return nil
		})
		again := api.PlaceOrder(token, p.ID, testenv.GoodCard, 1, nil)
		if o := api.Settle(token, again, time.Minute); o.Status != "CONFIRMED" {
			t.Errorf("order after the pod was replaced: %+v, want CONFIRMED", o)
		}
	})

	downRemovesNamespace(t, shop.CLI, cs, ns)
}

func stockOf(t *testing.T, api *testenv.API, id string) int {
	t.Helper()
	for _, p := range api.Products() {
		if p.ID == id {
			return p.Stock
		}
	}
	t.Fatalf("product %s gone", id)
	return 0
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
