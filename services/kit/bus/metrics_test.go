package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/bus/bustest"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/metrics/metricstest"
)

// reserves publishes n reserve commands for orders prefix-0, prefix-1, ….
func reserves(t *testing.T, b *bus.Bus, prefix string, n int) {
	t.Helper()
	for i := range n {
		publish(t, b, context.Background(), events.InventoryReserve, events.ReserveStock{OrderID: fmt.Sprintf("%s-%d", prefix, i)})
	}
}

func TestHandlerRunsAreMeasured(t *testing.T) {
	m := metricstest.Setup(t)
	b := bustest.New(t, natsURL)
	const k = 6
	reserves(t, b, "ok", k)
	reserves(t, b, "bad", 1)
	consume(t, b, bus.ConsumerConfig{Stream: events.StreamInventoryCommands, Durable: "measured", Subjects: []string{"inventory.cmd.>"}, MaxAttempts: 2},
		func(_ context.Context, msg bus.Message) error {
			if msg.Payload.(*events.ReserveStock).OrderID == "bad-0" {
				return errors.New("out of luck")
			}
			return nil
		})
	testenv.Until(t, 10*time.Second, "the failing message parked", func() bool { return bustest.StreamMsgs(t, b, events.StreamDLQ) == 1 })

	f := metricstest.Scrape(t, m.Handler())
	labels := map[string]string{"messaging_destination_name": events.InventoryReserve, "messaging_consumer_group_name": "measured"}
	if got := f.Count(metricstest.ProcessDuration, labels); got != k+2 {
		t.Errorf("%d handler runs measured, want %d (%d successes, 2 failed attempts)", got, k+2, k)
	}
	labels["error_type"] = "failed"
	if got := f.Count(metricstest.ProcessDuration, labels); got != 2 {
		t.Errorf("%d failed runs measured with error.type, want 2", got)
	}
}

func TestConsumerLagIsObserved(t *testing.T) {
	m := metricstest.Setup(t)
	b := bustest.New(t, natsURL)
	const n = 10
	reserves(t, b, "lag", n)
	release := make(chan struct{})
	consume(t, b, bus.ConsumerConfig{Stream: events.StreamInventoryCommands, Durable: "laggard", Subjects: []string{"inventory.cmd.>"}, Concurrency: 1},
		func(ctx context.Context, _ bus.Message) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
	labels := map[string]string{"messaging_destination_name": events.StreamInventoryCommands, "messaging_consumer_group_name": "laggard"}
	lag := func() float64 {
		v, _ := metricstest.Scrape(t, m.Handler()).Gauge(metricstest.ConsumerLag, labels)
		return v
	}
	// Nothing is acknowledged while the handler waits: every message is pending or in flight.
	testenv.Until(t, 10*time.Second, "lag of the stuck consumer", func() bool { return lag() == n })
	close(release)
	testenv.Until(t, 10*time.Second, "lag back to 0 once caught up", func() bool { return lag() == 0 })
}
