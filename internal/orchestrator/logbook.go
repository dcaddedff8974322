package orchestrator

import (
	"slices"
	"sync"

	"github.com/msctl/msctl/internal/redact"
	"github.com/msctl/msctl/internal/state"
)

// logbook keeps the last lines of every component in bounded rings and fans
// new lines out to followers. A slow follower loses lines rather than
// slowing down the service whose output we read.
type logbook struct {
	mu        sync.Mutex
	perSvc    int
	rings     map[string]*ring
	followers map[*follower]struct{}
	// secrets scrubs every line before it is kept (secrets.go).
	secrets redact.Scrubber
}

type ring struct {
	lines []state.LogLine
	next  int
	full  bool
}

type follower struct {
	q  state.LogQuery
	ch chan state.LogLine
}

func newLogbook(perService int) *logbook {
	return &logbook{perSvc: perService, rings: map[string]*ring{}, followers: map[*follower]struct{}{}}
}

func (b *logbook) add(l state.LogLine) {
	l.Text = b.secrets.Scrub(l.Text)
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rings[l.Service]
	if r == nil {
		r = &ring{lines: make([]state.LogLine, b.perSvc)}
		b.rings[l.Service] = r
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	for f := range b.followers {
		if f.q.Match(l) {
			select {
			case f.ch <- l:
			default:
			}
		}
	}
}

// query returns the kept lines q selects, oldest first, merged across
// services by time.
func (b *logbook) query(q state.LogQuery) []state.LogLine {
	b.mu.Lock()
	var out []state.LogLine
	for _, r := range b.rings {
		n := r.next
		if r.full {
			n = len(r.lines)
		}
		for i := range n {
			idx := i
			if r.full {
				idx = (r.next + i) % len(r.lines)
			}
			if l := r.lines[idx]; q.Match(l) {
				out = append(out, l)
			}
		}
	}
	b.mu.Unlock()
	slices.SortStableFunc(out, func(a, b state.LogLine) int { return a.Time.Compare(b.Time) })
	return out
}

func (b *logbook) follow(q state.LogQuery) (<-chan state.LogLine, func()) {
	fl := &follower{q: q, ch: make(chan state.LogLine, 1024)}
	b.mu.Lock()
	b.followers[fl] = struct{}{}
	b.mu.Unlock()
	return fl.ch, func() {
		b.mu.Lock()
		delete(b.followers, fl)
		b.mu.Unlock()
	}
}
