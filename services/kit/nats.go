package kit

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/kit/outbox"
)

// EnvCrashAfterPublish, when "1", makes the outbox relay exit the process
// right after a batch is published and before it is marked sent. System
// tests set it to prove the resulting duplicate is absorbed.
const EnvCrashAfterPublish = "OUTBOX_CRASH_AFTER_PUBLISH"

// crashExitCode is the exit status of a relay crash on purpose.
const crashExitCode = 3

// Bus returns a JetStream bus on the service's NATS connection after making
// sure the shop's streams exist. The broker may still be starting, so it
// retries until ctx ends or 30s pass.
func (s *Service) Bus(ctx context.Context) (*bus.Bus, error) {
	if s.NATS == nil {
		return nil, fmt.Errorf("%s needs NATS: set NATS_URL", s.Config.ServiceName)
	}
	b, err := bus.New(s.NATS, s.Log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err = b.EnsureStreams(ctx)
		if err == nil {
			// Unready while a consumer waits out its dependency, ready again
			// once it resumes (see bus.Bus.Healthy).
			s.AddCheck("consumers", b.Healthy)
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ensure streams: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// RelayOutbox runs the transactional outbox relay of the service's database
// as a background worker.
func (s *Service) RelayOutbox(b *bus.Bus) {
	r := &outbox.Relay{DB: s.DB, Bus: b, Log: s.Log}
	s.AddCheck("outbox", r.Healthy)
	if os.Getenv(EnvCrashAfterPublish) == "1" {
		r.AfterPublish = func() {
			s.Log.Warn("crashing after publish, before mark", "env", EnvCrashAfterPublish)
			os.Exit(crashExitCode)
		}
	}
	s.Go(r.Run)
}

// inboxPruneInterval is how often a consuming service prunes its inbox.
const inboxPruneInterval = 10 * time.Minute

// pruneInbox starts, once, the pruning of the inbox of a service that
// consumes into its database, so that the table does not grow forever.
func (s *Service) pruneInbox() {
	if s.DB == nil {
		return
	}
	s.inboxOnce.Do(func() {
		s.Go(func(ctx context.Context) error {
			return inbox.RunPruner(ctx, s.DB, inbox.DefaultRetain, inboxPruneInterval, s.Log)
		})
	})
}

// Consume runs a durable consumer as a background worker.
func (s *Service) Consume(b *bus.Bus, cfg bus.ConsumerConfig, h bus.Handler) {
	s.pruneInbox()
	s.Go(func(ctx context.Context) error { return b.Consume(ctx, cfg, h) })
}

// ConsumeBatch runs a durable consumer whose handler takes batches as a
// background worker.
func (s *Service) ConsumeBatch(b *bus.Bus, cfg bus.ConsumerConfig, h bus.BatchHandler) {
	s.pruneInbox()
	s.Go(func(ctx context.Context) error { return b.ConsumeBatch(ctx, cfg, h) })
}
