package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/services/kit/bus"
)

// ErrNoBroker is returned by the DLQ operations while the agent has no
// connection to the workspace's broker: it is not up (yet).
var ErrNoBroker = errors.New("the workspace's broker is not reachable yet: is the workspace up? (msctl ps)")

// attachBroker gives the DLQ operations the broker connection nc (the
// infra's host endpoint, so every runtime is reached the same way) and
// keeps the snapshot's DLQ depth current until ctx ends. Up calls it with
// a.mu held, so it must not take a.mu: a.broker is atomic instead.
func (a *Agent) attachBroker(ctx context.Context, nc *nats.Conn) error {
	b, err := bus.New(nc, a.log)
	if err != nil {
		return err
	}
	a.broker.Store(b)
	a.collectWG.Add(1)
	go func() {
		defer a.collectWG.Done()
		a.col.pollDLQDepth(ctx, b)
	}()
	return nil
}

func (a *Agent) dlqBus() (*bus.Bus, error) {
	b := a.broker.Load()
	if b == nil {
		return nil, ErrNoBroker
	}
	return b, nil
}

// pollDLQDepth reads the DLQ stream's message count once a second: one
// stream info request, whatever the DLQ holds.
func (c *collector) pollDLQDepth(ctx context.Context, b *bus.Bus) {
	everyPoll(ctx, func(ctx context.Context) {
		if n, err := b.DLQDepth(ctx); err == nil {
			c.mu.Lock()
			c.dlqDepth = n
			c.mu.Unlock()
		}
	})
}

// DLQ lists the parked messages, oldest first; subject (a subject or a
// wildcard, empty for all) narrows them to those first published there.
func (a *Agent) DLQ(ctx context.Context, subject string) ([]state.DLQMessage, error) {
	b, err := a.dlqBus()
	if err != nil {
		return nil, err
	}
	ps, err := b.ParkedMessages(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]state.DLQMessage, len(ps))
	for i, p := range ps {
		out[i] = dlqMessage(p)
	}
	return out, nil
}

// DLQMessage returns one parked message with its headers and payload.
func (a *Agent) DLQMessage(ctx context.Context, id uint64) (state.DLQMessage, error) {
	b, err := a.dlqBus()
	if err != nil {
		return state.DLQMessage{}, err
	}
	p, err := b.ParkedMessage(ctx, id)
	if err != nil {
		return state.DLQMessage{}, err
	}
	m := dlqMessage(p)
	m.Headers, m.Payload = p.Header, string(p.Data)
	return m, nil
}

func dlqMessage(p bus.Parked) state.DLQMessage {
	return state.DLQMessage{
		ID: p.Seq, Subject: p.Subject, Reason: p.Reason, Stream: p.Stream, StreamSeq: p.StreamSeq,
		Consumer: p.Consumer, Attempts: p.Attempts, ParkedAt: p.ParkedAt,
	}
}

// DLQSelection names parked messages: by id, or all (of subject, when set).
type DLQSelection struct {
	IDs     []uint64
	All     bool
	Subject string
}

func (s DLQSelection) check() error {
	switch {
	case s.All && len(s.IDs) > 0:
		return errors.New("give message ids or all, not both")
	case !s.All && len(s.IDs) == 0:
		return errors.New("give message ids or all")
	case !s.All && s.Subject != "":
		return errors.New("a subject narrows all, not ids")
	}
	return nil
}

// DLQReplay delivers the selected messages to the consumers that parked
// them again and removes them from the DLQ; see bus.Bus.ReplayParked.
func (a *Agent) DLQReplay(ctx context.Context, sel DLQSelection) (state.DLQOutcome, error) {
	return a.eachParked(ctx, sel, (*bus.Bus).ReplayParked)
}

// DLQDrop deletes the selected messages for good.
func (a *Agent) DLQDrop(ctx context.Context, sel DLQSelection) (state.DLQOutcome, error) {
	return a.eachParked(ctx, sel, (*bus.Bus).DropParked)
}

// eachParked applies op to every selected message, going on past one that
// fails so that one bad id does not hold back the others.
func (a *Agent) eachParked(ctx context.Context, sel DLQSelection, op func(*bus.Bus, context.Context, uint64) error) (state.DLQOutcome, error) {
	out := state.DLQOutcome{Done: []uint64{}}
	if err := sel.check(); err != nil {
		return out, err
	}
	b, err := a.dlqBus()
	if err != nil {
		return out, err
	}
	ids := sel.IDs
	if sel.All {
		ps, err := b.ParkedMessages(ctx, sel.Subject)
		if err != nil {
			return out, err
		}
		for _, p := range ps {
			ids = append(ids, p.Seq)
		}
	}
	for _, id := range ids {
		if err := op(b, ctx, id); err != nil {
			out.Failed = append(out.Failed, state.DLQFailure{ID: id, Error: err.Error()})
			continue
		}
		out.Done = append(out.Done, id)
	}
	return out, nil
}

// dlqRoutes serves the DLQ: GET /api/dlq[?subject=S], GET /api/dlq/{id},
// POST /api/dlq/replay and /api/dlq/drop with ?id=1,2 or ?all=1[&subject=S].
func (a *Agent) dlqRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/dlq", func(w http.ResponseWriter, r *http.Request) {
		ms, err := a.DLQ(r.Context(), r.URL.Query().Get("subject"))
		if err != nil {
			writeDLQError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ms)
	})
	mux.HandleFunc("GET /api/dlq/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_id", fmt.Sprintf("bad message id %q: ids are the numbers dlq ls shows", r.PathValue("id")))
			return
		}
		m, err := a.DLQMessage(r.Context(), id)
		if err != nil {
			writeDLQError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	for op, fn := range map[string]func(context.Context, DLQSelection) (state.DLQOutcome, error){"replay": a.DLQReplay, "drop": a.DLQDrop} {
		mux.HandleFunc("POST /api/dlq/"+op, func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			sel := DLQSelection{All: q.Get("all") == "1", Subject: q.Get("subject")}
			if s := q.Get("id"); s != "" {
				for f := range strings.SplitSeq(s, ",") {
					id, err := strconv.ParseUint(f, 10, 64)
					if err != nil {
						writeError(w, http.StatusBadRequest, "bad_id", fmt.Sprintf("bad message id %q: ids are the numbers dlq ls shows", f))
						return
					}
					sel.IDs = append(sel.IDs, id)
				}
			}
			if err := sel.check(); err != nil {
				writeError(w, http.StatusBadRequest, "bad_selection", err.Error())
				return
			}
			out, err := fn(r.Context(), sel)
			if err != nil {
				writeDLQError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, out)
		})
	}
}

func writeDLQError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNoBroker):
		writeError(w, http.StatusConflict, "not_up", err.Error())
	case errors.Is(err, bus.ErrNotParked):
		writeError(w, http.StatusNotFound, "not_found", err.Error()+" (msctl dlq ls lists the parked messages)")
	default:
		writeError(w, http.StatusBadGateway, "broker_failed", err.Error())
	}
}
