package dash

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/msctl/msctl/internal/state"
)

// Messages: everything the model learns arrives as one of these.
type (
	pollMsg     struct{}
	snapshotMsg struct {
		snap state.Snapshot
		at   time.Time
		err  error
	}
	traceMsg struct {
		id    string
		spans []state.Span
		err   error
	}
	metricsMsg struct {
		metrics state.Metrics
		err     error
	}
	restartMsg struct {
		service string
		err     error
	}
	logsOpenedMsg struct {
		feed *logFeed
	}
	logsMsg struct {
		feed   *logFeed
		lines  []state.LogLine
		closed bool
		err    error
	}
)

const (
	callTimeout = 3 * time.Second
	// restartTimeout allows for a service that takes its time to turn ready.
	restartTimeout = 60 * time.Second
	// logBatch and logCoalesce bound how often a busy log stream makes the
	// dashboard re-render, and how much one message carries.
	logBatch    = 1000
	logCoalesce = 100 * time.Millisecond
)

func fetchSnapshot(src Source, now func() time.Time) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		snap, err := src.Snapshot(ctx)
		return snapshotMsg{snap: snap, at: now(), err: err}
	}
}

func fetchMetrics(src Source) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		mt, err := src.Metrics(ctx, "")
		return metricsMsg{metrics: mt, err: err}
	}
}

func poll(every time.Duration) tea.Cmd {
	return tea.Tick(every, func(time.Time) tea.Msg { return pollMsg{} })
}

func fetchTrace(src Source, id string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		spans, err := src.Trace(ctx, id)
		return traceMsg{id: id, spans: spans, err: err}
	}
}

func restart(src Source, service string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
		defer cancel()
		return restartMsg{service: service, err: src.Restart(ctx, service)}
	}
}

// logFeed pumps one log stream into a channel, so that a tea.Cmd can wait
// for a batch of lines without the model ever touching the stream.
type logFeed struct {
	lines  chan state.LogLine
	err    error // why the stream ended; read only after lines is closed
	cancel context.CancelFunc
	// resumed feeds replace a broken one: lines older than what the model
	// already has are dropped.
	resumed bool
}

// openLogs starts a feed; whether the stream could be opened shows as the
// feed ending (with its error) or not.
func openLogs(src Source, since time.Duration, resumed bool) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithCancel(context.Background())
		f := &logFeed{lines: make(chan state.LogLine, logBatch), cancel: cancel, resumed: resumed}
		go f.pump(ctx, src, since)
		return logsOpenedMsg{feed: f}
	}
}

func (f *logFeed) pump(ctx context.Context, src Source, since time.Duration) {
	defer close(f.lines)
	f.err = src.FollowLogs(ctx, since, func(l state.LogLine) error {
		select {
		case f.lines <- l:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// wait blocks for the next line, then gathers what else arrives within
// logCoalesce, up to logBatch lines.
func (f *logFeed) wait() tea.Cmd {
	return func() tea.Msg {
		l, ok := <-f.lines
		if !ok {
			return logsMsg{feed: f, closed: true, err: f.err}
		}
		batch := []state.LogLine{l}
		deadline := time.NewTimer(logCoalesce)
		defer deadline.Stop()
		for len(batch) < logBatch {
			select {
			case l, ok := <-f.lines:
				if !ok {
					return logsMsg{feed: f, lines: batch}
				}
				batch = append(batch, l)
			case <-deadline.C:
				return logsMsg{feed: f, lines: batch}
			}
		}
		return logsMsg{feed: f, lines: batch}
	}
}
