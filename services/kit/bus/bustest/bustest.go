// Package bustest helps the tests of packages built on kit/bus: a bus whose
// streams start empty, and what a stream holds.
package bustest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
)

// New connects to the NATS server at url and recreates the shop's streams,
// so every test starts empty; the connection closes when the test ends.
func New(t testing.TB, url string) *bus.Bus {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := bus.New(nc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for s := range events.StreamSubjects {
		_ = b.JetStream().DeleteStream(ctx, s)
	}
	if err := b.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	return b
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
