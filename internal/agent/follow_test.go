package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/testenv"
)

// TestBrokerConnectionFollowsEndpoint: when the broker comes back on
// another port, the agent's connection reconnects there, because its
// dialer asks for the current endpoint.
func TestBrokerConnectionFollowsEndpoint(t *testing.T) {
	first := testenv.NATS(t)
	var mu sync.Mutex
	cur := first.URL()
	infra := func() (runtime.Infra, bool) {
		mu.Lock()
		defer mu.Unlock()
		return runtime.Infra{Host: runtime.Endpoints{NATSURL: cur}}, true
	}
	nc, err := nats.Connect(first.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.SetCustomDialer(newBrokerDialer(infra)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	second := testenv.NATS(t)
	mu.Lock()
	cur = second.URL()
	mu.Unlock()
	first.Shutdown()

	// A subscriber on the second server only hears what the agent's
	// connection publishes once it is connected there.
	sub, err := nats.Connect(second.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got, err := sub.SubscribeSync("follow")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if nc.IsConnected() {
			if err := nc.Publish("follow", []byte("here")); err == nil {
				if _, err := got.NextMsg(200 * time.Millisecond); err == nil {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the connection never reached the broker's new endpoint %s", second.URL())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
