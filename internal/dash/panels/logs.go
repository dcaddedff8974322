package panels

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/dash/ring"
	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// Levels are the log levels the level filter cycles through, lowest first.
var Levels = []string{"debug", "info", "warn", "error"}

// Logs is the merged log of every component, or of one, kept in a ring buffer.
type Logs struct {
	buf *ring.Buffer[logEntry]
	// next is the sequence number the next line gets; the oldest line held
	// is next-buf.Len(). match holds the sequence numbers of the lines that
	// pass the filters, so a frame never scans the whole buffer.
	next  uint64
	match []uint64

	service  string // "" for all
	level    int    // index into Levels
	filter   string
	follow   bool
	back     int // lines scrolled up from the newest match
	services []string
}

type logEntry struct {
	time    time.Time
	service string
	level   int
	text    string // what is shown: slog's JSON turned into msg key=value
	lower   string // text lower-cased, for the text filter
}

var _ Panel = (*Logs)(nil)

// NewLogs keeps the last capacity lines; it starts following all services at
// level info and above.
func NewLogs(capacity int) *Logs {
	return &Logs{buf: ring.New[logEntry](capacity), follow: true, level: 1}
}

// Title implements Panel.
func (p *Logs) Title() string { return "Logs" }

// SetSnapshot implements Panel: it learns the component names the service
// filter cycles through.
func (p *Logs) SetSnapshot(s state.Snapshot, _ time.Time) {
	p.services = p.services[:0]
	for _, c := range s.Components {
		p.services = append(p.services, c.Name)
	}
}

// Append adds lines, dropping the oldest beyond the capacity.
func (p *Logs) Append(lines []state.LogLine) {
	added := 0
	for _, l := range lines {
		e := entryOf(l)
		p.buf.Push(e)
		if p.pass(e) {
			p.match = append(p.match, p.next)
			added++
		}
		p.next++
	}
	if !p.follow {
		p.back += added // keep the lines in view where they are
	}
	oldest := p.next - uint64(p.buf.Len())
	drop := 0
	for drop < len(p.match) && p.match[drop] < oldest {
		drop++
	}
	p.match = p.match[drop:]
	// Reslicing leaks the dropped prefix until the array is reallocated;
	// compact once it dominates.
	if cap(p.match) > 2*p.buf.Cap() && len(p.match) < cap(p.match)/2 {
		p.match = slices.Clone(p.match)
	}
	p.back = clamp(p.back, 0, len(p.match))
}

// SetFilter implements Panel.
func (p *Logs) SetFilter(q string) {
	p.filter = strings.ToLower(q)
	p.refilter()
}

// SetService shows only one component's lines ("" for all).
func (p *Logs) SetService(name string) {
	p.service = name
	p.refilter()
}

// Service is the component shown, "" for all.
func (p *Logs) Service() string { return p.service }

// CycleService steps through all services, then each component in turn.
func (p *Logs) CycleService() {
	i := slices.Index(p.services, p.service)
	switch {
	case p.service == "" && len(p.services) > 0:
		p.service = p.services[0]
	case i >= 0 && i+1 < len(p.services):
		p.service = p.services[i+1]
	default:
		p.service = ""
	}
	p.refilter()
}

// CycleLevel raises the minimum level shown, wrapping to debug after error.
func (p *Logs) CycleLevel() {
	p.level = (p.level + 1) % len(Levels)
	p.refilter()
}

// ToggleFollow switches between following the newest lines and holding still.
func (p *Logs) ToggleFollow() {
	p.follow = !p.follow
	if p.follow {
		p.back = 0
	}
}

// Following reports whether the view sticks to the newest line.
func (p *Logs) Following() bool { return p.follow }

// Move implements Panel: moving up stops following; reaching the bottom
// resumes it.
func (p *Logs) Move(n int) {
	p.back = clamp(p.back-n, 0, len(p.match))
	p.follow = p.back == 0
}

func (p *Logs) refilter() {
	p.match = p.match[:0]
	first := p.next - uint64(p.buf.Len())
	for i := range p.buf.Len() {
		if p.pass(p.buf.At(i)) {
			p.match = append(p.match, first+uint64(i))
		}
	}
	p.back = clamp(p.back, 0, len(p.match))
}

func (p *Logs) pass(e logEntry) bool {
	return (p.service == "" || e.service == p.service) && e.level >= p.level &&
		(p.filter == "" || strings.Contains(e.lower, p.filter))
}

// View implements Panel.
func (p *Logs) View(st theme.Styles, width, height int) string {
	svc := p.service
	if svc == "" {
		svc = "all"
	}
	mode := "following"
	if !p.follow {
		mode = fmt.Sprintf("paused, %d newer", p.back)
	}
	head := fmt.Sprintf("service: %s · level ≥ %s · %s · %d of %d lines", svc, Levels[p.level], mode, len(p.match), p.buf.Len())
	if p.filter != "" {
		head += fmt.Sprintf(" · matching %q", p.filter)
	}
	lines := []string{st.ColHeader.Render(head)}
	if len(p.match) == 0 {
		lines = append(lines, empty(st, "no log lines yet")...)
		return Lines(lines, width, height)
	}
	// Scrolled to the top still fills the screen.
	end := max(len(p.match)-p.back, min(len(p.match), height-1))
	start := max(0, end-(height-1))
	first := p.next - uint64(p.buf.Len())
	for _, seq := range p.match[start:end] {
		e := p.buf.At(int(seq - first))
		lvl := fit(strings.ToUpper(Levels[e.level]), 5)
		switch e.level {
		case 2:
			lvl = st.Warn.Render(lvl)
		case 3:
			lvl = st.Bad.Render(lvl)
		}
		lines = append(lines, e.time.Format("15:04:05.000")+" "+fit(e.service, 13)+" "+lvl+" "+e.text)
	}
	return Lines(lines, width, height)
}

// entryOf prepares a line for display once, when it arrives.
func entryOf(l state.LogLine) logEntry {
	text, lvl := l.Text, l.Level
	if strings.HasPrefix(text, "{") {
		if t, jl, ok := fromJSON(text); ok {
			text = t
			if lvl == "" {
				lvl = jl
			}
		}
	}
	text = strings.ReplaceAll(text, "\t", "    ")
	e := logEntry{time: l.Time, service: l.Service, level: levelRank(lvl), text: text}
	e.lower = strings.ToLower(e.service + " " + text)
	return e
}

// fromJSON turns one slog JSON record into "msg key=value …", leaving out
// what the other columns already show.
func fromJSON(s string) (string, string, bool) {
	var rec map[string]any
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		return "", "", false
	}
	msg, _ := rec["msg"].(string)
	lvl, _ := rec["level"].(string)
	var b strings.Builder
	b.WriteString(msg)
	keys := make([]string, 0, len(rec))
	for k := range rec {
		switch k {
		case "msg", "level", "time", "service":
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := rec[k]
		var vs string
		switch v := v.(type) {
		case string:
			vs = v
		default:
			raw, _ := json.Marshal(v)
			vs = string(raw)
		}
		fmt.Fprintf(&b, " %s=%s", k, vs)
	}
	return b.String(), lvl, true
}

func levelRank(l string) int {
	switch strings.ToLower(l) {
	case "debug":
		return 0
	case "warn", "warning":
		return 2
	case "error", "fatal", "panic":
		return 3
	default:
		return 1
	}
}
