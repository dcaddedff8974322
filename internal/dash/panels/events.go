package panels

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/dash/ring"
	"github.com/msctl/msctl/internal/dash/theme"
	"github.com/msctl/msctl/internal/state"
)

// maxSubjects bounds the per-subject table: subjects that embed ids would
// otherwise grow it without end.
const maxSubjects = 500

// Events shows the broker traffic: a table of subjects with their publishes
// since the dashboard started (each once, however many consumers read it),
// JetStream's deliveries per consumer, and the flow of recent messages below.
// Enter on a subject narrows the flow to it.
type Events struct {
	buf      *ring.Buffer[state.Event]
	subjects map[string]*subjectStat
	rows     []*subjectStat
	filter   string
	focus    string // subject the flow is narrowed to, "" for all
	now      time.Time
	cur      cursor
	parked   uint64 // the DLQ depth of the last snapshot
	// deliveries are the agent's per-consumer counts of the last snapshot.
	deliveries []state.Delivery
	// last and lastIDs identify what was already taken from earlier
	// snapshots, which repeat the agent's recent events.
	last    time.Time
	lastIDs map[string]bool
}

type subjectStat struct {
	subject string
	stream  string
	count   int
	bytes   int
	last    time.Time
}

var _ Panel = (*Events)(nil)

var subjectCols = []column{
	{title: "SUBJECT", min: 20, flex: 2},
	{title: "STREAM", min: 10, flex: 1},
	{title: "MSGS", min: 6, right: true},
	{title: "BYTES", min: 8, right: true},
	{title: "LAST", min: 8, right: true},
}

// NewEvents keeps the last capacity messages.
func NewEvents(capacity int) *Events {
	return &Events{buf: ring.New[state.Event](capacity), subjects: map[string]*subjectStat{}, lastIDs: map[string]bool{}}
}

// Title implements Panel.
func (p *Events) Title() string { return "Events" }

// SetSnapshot implements Panel: it takes the events it has not seen yet.
func (p *Events) SetSnapshot(s state.Snapshot, now time.Time) {
	p.now = now
	p.parked = s.DLQDepth
	p.deliveries = s.Deliveries
	evs := slices.Clone(s.Events)
	slices.SortStableFunc(evs, func(a, b state.Event) int { return a.Time.Compare(b.Time) })
	for _, e := range evs {
		switch {
		case e.Time.Before(p.last):
			continue
		case e.Time.Equal(p.last):
			if p.lastIDs[eventKey(e)] {
				continue
			}
		default:
			p.last = e.Time
			clear(p.lastIDs)
		}
		p.lastIDs[eventKey(e)] = true
		p.buf.Push(e)
		st := p.subjects[e.Subject]
		if st == nil {
			p.evictSubject()
			st = &subjectStat{subject: e.Subject}
			p.subjects[e.Subject] = st
		}
		st.stream = e.Stream
		st.count++
		st.bytes += e.Size
		st.last = e.Time
	}
	p.apply()
}

func eventKey(e state.Event) string { return e.Subject + "\x00" + e.MsgID }

func (p *Events) evictSubject() {
	if len(p.subjects) < maxSubjects {
		return
	}
	var oldest *subjectStat
	for _, st := range p.subjects {
		if oldest == nil || st.last.Before(oldest.last) {
			oldest = st
		}
	}
	delete(p.subjects, oldest.subject)
}

// SetFilter implements Panel.
func (p *Events) SetFilter(q string) {
	p.filter = strings.ToLower(q)
	p.apply()
}

func (p *Events) apply() {
	p.rows = p.rows[:0]
	for _, st := range p.subjects {
		if matches(p.filter, st.subject, st.stream) {
			p.rows = append(p.rows, st)
		}
	}
	slices.SortFunc(p.rows, func(a, b *subjectStat) int { return cmp.Compare(a.subject, b.subject) })
}

// Move implements Panel.
func (p *Events) Move(n int) { p.cur.move(n, len(p.rows)) }

// ToggleFocus narrows the flow to the selected subject, or widens it again.
func (p *Events) ToggleFocus() {
	if p.focus != "" || len(p.rows) == 0 {
		p.focus = ""
		return
	}
	p.focus = p.rows[clamp(p.cur.sel, 0, len(p.rows)-1)].subject
}

// View implements Panel. While messages are parked in the DLQ, a line
// above the traffic says how many and which command acts on them.
func (p *Events) View(st theme.Styles, width, height int) string {
	if p.parked == 0 || height < 2 {
		return p.traffic(st, width, height)
	}
	warn := st.Warn.Render(fmt.Sprintf("%d parked in the DLQ: msctl dlq ls, then dlq replay or dlq drop", p.parked))
	return Line(warn, width) + "\n" + p.traffic(st, width, height-1)
}

func (p *Events) traffic(st theme.Styles, width, height int) string {
	if len(p.rows) == 0 {
		return Lines(empty(st, "no broker messages seen yet"+filterNote(p.filter)), width, height)
	}
	tableH := min(len(p.rows)+1, height/2)
	lines := table(st, subjectCols, width, tableH, len(p.rows), &p.cur, func(i int) []cell {
		s := p.rows[i]
		return []cell{
			plain(s.subject), plain(s.stream), plain(strconv.Itoa(s.count)),
			plain(strconv.Itoa(s.bytes)), plain(Age(p.now.Sub(s.last)) + " ago"),
		}
	})
	for len(lines) < tableH {
		lines = append(lines, "")
	}
	head := "recent messages"
	if p.focus != "" {
		head += " on " + p.focus + " (enter: all)"
	}
	lines = append(lines, p.consumers(st, height/4)...)
	lines = append(lines, st.ColHeader.Render(head))
	flowH := height - len(lines)
	var flow []string
	for i := p.buf.Len() - 1; i >= 0 && len(flow) < flowH; i-- {
		e := p.buf.At(i)
		if (p.focus != "" && e.Subject != p.focus) || !matches(p.filter, e.Subject, e.Stream) {
			continue
		}
		flow = append(flow, fmt.Sprintf("  %s %s %s %dB %s", e.Time.Format("15:04:05.000"), fit(e.Subject, 28), fit(e.Stream, 10), e.Size, e.MsgID))
	}
	return Lines(append(lines, flow...), width, height)
}

// consumers are at most height lines of deliveries per consumer, a heading
// first; none while no consumer was delivered anything.
func (p *Events) consumers(st theme.Styles, height int) []string {
	var lines []string
	for _, d := range p.deliveries {
		if len(lines) == max(height, 2)-1 {
			break
		}
		if matches(p.filter, d.Consumer, d.Stream) {
			lines = append(lines, fmt.Sprintf("  %s %s %8d delivered %6d redelivered", fit(d.Consumer, 26), fit(d.Stream, 10), d.Delivered, d.Redelivered))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return append([]string{st.ColHeader.Render("deliveries per consumer (since the agent started)")}, lines...)
}
