package embnats

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestNATSJetStreamSurvivesRestart(t *testing.T) {
	begin := time.Now()
	s, err := Start(Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nats ready in %v at %s", time.Since(begin), s.URL())
	t.Cleanup(s.Shutdown)
	url := s.URL()

	nc, err := nats.Connect(url, nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(200))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		if _, err := js.Publish(ctx, "orders.created", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}

	for range 2 {
		begin = time.Now()
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		t.Logf("nats restarted in %v", time.Since(begin))
		if s.URL() != url {
			t.Fatalf("URL changed across restart: %s -> %s", url, s.URL())
		}
	}

	// The client connected before the restarts reconnects and reads
	// everything that was acknowledged.
	cons, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for msg := range batch.Messages() {
		got = append(got, string(msg.Data()))
		if err := msg.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	if want := "0,1,2,3,4"; strings.Join(got, ",") != want {
		t.Fatalf("after restart got %v, want %s", got, want)
	}
}

func TestNATSLogsToWriter(t *testing.T) {
	logs := &lockedBuffer{}
	s, err := Start(Config{StoreDir: t.TempDir(), Logs: logs})
	if err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.Shutdown() // idempotent
	if !strings.Contains(logs.String(), "[INF] Starting nats-server") {
		t.Fatalf("logs lack the start notice:\n%s", logs.String())
	}
}

func TestNATSPortInUse(t *testing.T) {
	a, err := Start(Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Shutdown)
	if b, err := Start(Config{StoreDir: t.TempDir(), Port: a.Port()}); err == nil {
		b.Shutdown()
		t.Fatal("second server on the same port started")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
