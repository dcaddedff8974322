package orchestrator

import (
	"regexp"
	"slices"
	"sync"
	"time"

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
}

type ring struct {
	lines []state.LogLine
	next  int
	full  bool
}

type follower struct {
	f  LogFilter
	ch chan state.LogLine
}

func newLogbook(perService int) *logbook {
	return &logbook{perSvc: perService, rings: map[string]*ring{}, followers: map[*follower]struct{}{}}
}

func (b *logbook) add(l state.LogLine) {
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
		if f.f.match(l) {
			select {
			case f.ch <- l:
			default:
			}
		}
	}
}

// query returns the kept lines matching f, oldest first, merged across
// services by time.
func (b *logbook) query(f LogFilter) []state.LogLine {
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
			if l := r.lines[idx]; f.match(l) {
				out = append(out, l)
			}
		}
	}
	b.mu.Unlock()
	slices.SortStableFunc(out, func(a, b state.LogLine) int { return a.Time.Compare(b.Time) })
	return out
}

func (b *logbook) follow(f LogFilter) (<-chan state.LogLine, func()) {
	fl := &follower{f: f, ch: make(chan state.LogLine, 1024)}
	b.mu.Lock()
	b.followers[fl] = struct{}{}
	b.mu.Unlock()
	return fl.ch, func() {
		b.mu.Lock()
		delete(b.followers, fl)
		b.mu.Unlock()
	}
}

// LogFilter selects log lines. The zero value selects everything.
type LogFilter struct {
	Services []string       // empty: all
	Grep     *regexp.Regexp // nil: all
	Since    time.Time      // zero: all
}

func (f LogFilter) match(l state.LogLine) bool {
	if len(f.Services) > 0 && !slices.Contains(f.Services, l.Service) {
		return false
	}
	if !f.Since.IsZero() && l.Time.Before(f.Since) {
		return false
	}
	return f.Grep == nil || f.Grep.MatchString(l.Text)
}
