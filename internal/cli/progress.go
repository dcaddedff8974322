package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/msctl/msctl/internal/state"
)

// progress shows what up is doing, one line per component with its state
// and the time since up began. On a terminal the lines are redrawn in place
// and the clocks of components still on their way keep running; anywhere
// else (a pipe, a CI log) it prints a plain line each time a component
// changes state, which reads the same in any log.
type progress struct {
	w     io.Writer
	begin time.Time
	// cols returns the terminal's width; nil means plain lines.
	cols  func() int
	comps []compProgress // in the order of the snapshots
	drawn int            // lines of the frame on screen
}

// compProgress is a component's progress as far as up has seen it.
type compProgress struct {
	name, state, detail string
	since               time.Time // when up first saw it in state
}

// progressRow is one line of the display.
type progressRow struct {
	Name, State, Detail string
	// Elapsed is the time since up began: until now while the component is
	// on its way, until it got there once it is healthy or stopped.
	Elapsed time.Duration
}

// newProgress returns a progress writing to w, in place when w is a
// terminal.
func newProgress(w io.Writer, begin time.Time) *progress {
	p := &progress{w: w, begin: begin}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		p.cols = func() int { return termCols(f) }
	}
	return p
}

// isTerminal reports whether f is a terminal that understands cursor
// movement.
func isTerminal(f *os.File) bool {
	if os.Getenv("TERM") == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// termCols is f's width in columns, 80 when the terminal does not say.
func termCols(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}

func (p *progress) update(s state.Snapshot) { p.updateAt(s, time.Now()) }

// updateAt takes in snapshot s seen at now and writes what changed.
func (p *progress) updateAt(s state.Snapshot, now time.Time) {
	changed := p.track(s, now)
	if p.cols != nil {
		frame := renderFrame(p.rows(now), p.cols(), p.drawn)
		p.drawn = len(p.comps)
		_, _ = io.WriteString(p.w, frame)
		return
	}
	width := 0
	for _, c := range s.Components {
		width = max(width, len(c.Name))
	}
	for _, c := range changed {
		_, _ = io.WriteString(p.w, plainLine(progressRow{Name: c.name, State: c.state, Detail: c.detail, Elapsed: c.since.Sub(p.begin)}, width))
	}
}

// track records the states in s and returns the components whose state
// changed.
func (p *progress) track(s state.Snapshot, now time.Time) []compProgress {
	var changed []compProgress
	for _, c := range s.Components {
		if c.State == "" {
			continue
		}
		detail := ""
		if c.State != state.StateHealthy && c.Health != "" && c.Health != "ok" {
			detail = firstLine(c.Health)
		}
		i := p.index(c.Name)
		if i < 0 {
			p.comps = append(p.comps, compProgress{name: c.Name})
			i = len(p.comps) - 1
		}
		cp := &p.comps[i]
		cp.detail = detail
		if cp.state != string(c.State) {
			cp.state, cp.since = string(c.State), now
			changed = append(changed, *cp)
		}
	}
	return changed
}

func (p *progress) index(name string) int {
	for i, c := range p.comps {
		if c.name == name {
			return i
		}
	}
	return -1
}

// rows is the display at now.
func (p *progress) rows(now time.Time) []progressRow {
	rows := make([]progressRow, len(p.comps))
	for i, c := range p.comps {
		end := now
		if c.state == string(state.StateHealthy) || c.state == string(state.StateStopped) {
			end = c.since
		}
		rows[i] = progressRow{Name: c.name, State: c.state, Detail: c.detail, Elapsed: end.Sub(p.begin)}
	}
	return rows
}

// plainLine is one component's line, ending in a newline.
func plainLine(r progressRow, nameWidth int) string {
	detail := ""
	if r.Detail != "" {
		detail = "  " + r.Detail
	}
	return fmt.Sprintf("%-*s  %-9s %6s%s\n", nameWidth, r.Name, r.State, round(r.Elapsed), detail)
}

// renderFrame draws rows over the prevLines lines drawn before: the cursor
// goes back up to the first of them, everything below is cleared, and each
// row is written cut to cols-1 columns so that none wraps (a wrapped line
// would throw off the next frame's count).
func renderFrame(rows []progressRow, cols, prevLines int) string {
	var b strings.Builder
	if prevLines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", prevLines)
	}
	b.WriteString("\r\x1b[J")
	width := 0
	for _, r := range rows {
		width = max(width, len(r.Name))
	}
	for _, r := range rows {
		line := strings.TrimSuffix(plainLine(r, width), "\n")
		b.WriteString(truncate(line, cols-1))
		b.WriteByte('\n')
	}
	return b.String()
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string(rs[:n-1]) + "…"
}
