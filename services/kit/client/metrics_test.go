package client_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/msctl/msctl/services/kit/client"
	"github.com/msctl/msctl/services/kit/metrics/metricstest"
)

func TestCallsAreMeasuredPerPeer(t *testing.T) {
	m := metricstest.Setup(t)
	inv, invC := upstream(t, "inventory-m")
	_, payC := upstream(t, "payments-m")
	ctx := context.Background()

	for range 4 {
		if _, _, err := invC.Get(ctx, "/x", nil); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := payC.Send(ctx, &client.Request{Method: http.MethodPost, URL: &url.URL{Path: "/charge"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	inv.mode.Store(1) // 500: an answer, counted with its status
	_, _, _ = invC.Get(ctx, "/x", nil)
	inv.mode.Store(2) // the connection hangs up: no answer
	for range 2 {
		if _, _, err := invC.Get(ctx, "/x", nil); err == nil {
			t.Fatal("a hung-up call succeeded")
		}
	}
	// Three failures (the 500 and two hang-ups) opened the breaker: the next call is refused without reaching the upstream.
	if _, err := invC.Send(ctx, &client.Request{Method: http.MethodGet, URL: &url.URL{Path: "/x"}}); err == nil {
		t.Fatal("call through an open breaker succeeded")
	}

	f := metricstest.Scrape(t, m.Handler())
	for _, c := range []struct {
		labels map[string]string
		want   uint64
	}{
		{map[string]string{"peer_service": "inventory-m", "http_request_method": "GET", "http_response_status_code": "200"}, 4},
		{map[string]string{"peer_service": "inventory-m", "http_response_status_code": "500"}, 1},
		{map[string]string{"peer_service": "inventory-m", "error_type": "connection"}, 2},
		{map[string]string{"peer_service": "inventory-m", "error_type": "breaker_open"}, 1},
		{map[string]string{"peer_service": "payments-m", "http_request_method": "POST", "http_response_status_code": "200"}, 1},
	} {
		if got := f.Count(metricstest.ClientDuration, c.labels); got != c.want {
			t.Errorf("%v: %d calls, want %d", c.labels, got, c.want)
		}
	}
	for _, l := range f.Labels(metricstest.ClientDuration) {
		if _, failed := l["error_type"]; failed && l["http_response_status_code"] != "" {
			t.Errorf("a call without answer carries a status: %v", l)
		}
	}
}
