// Package bustest helps the tests of packages built on kit/bus: a bus whose
// streams start empty, and what a stream holds.
package bustest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
)

// New connects to the NATS server at url and recreates the shop's streams,
// so every test starts empty; the connection closes when the test ends.
func New(t testing.TB, url string) *bus.Bus {
	t.Helper()
	b := Dial(t, url)
	ctx := context.Background()
	for s := range events.StreamSubjects {
		_ = b.JetStream().DeleteStream(ctx, s)
	}
	// Recreating a stream right after deleting it was refused once on a
	// loaded machine ("error creating store for stream": the server could
	// not set up the new file store yet); a few more tries get past that.
	var err error
	for try := 0; try < 20; try++ {
		if err = b.EnsureStreams(ctx); err == nil {
			return b
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

// StreamMsgs returns how many messages stream holds.
func StreamMsgs(t testing.TB, b *bus.Bus, stream string) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Dial connects a quiet bus to the NATS server at url, leaving its streams
// as they are. The connection reconnects forever, as a service's does, so
// tests may restart the server under it; it closes when the test ends.
func Dial(t testing.TB, url string) *bus.Bus {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := bus.New(nc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StreamMsg returns the message stored at seq in stream.
func StreamMsg(t testing.TB, b *bus.Bus, stream string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := b.JetStream().Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// LimitMsgs creates or updates the shop's stream name to keep only its
// last maxMsgs messages, as a stream whose limits removed history.
func LimitMsgs(t testing.TB, b *bus.Bus, name string, maxMsgs int64) {
	t.Helper()
	cfg, err := bus.StreamConfig(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxMsgs = maxMsgs
	if _, err := b.JetStream().CreateOrUpdateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}
