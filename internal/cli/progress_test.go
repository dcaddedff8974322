package cli

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/msctl/msctl/internal/state"
)

func snap(states ...string) state.Snapshot {
	var s state.Snapshot
	for i := 0; i+1 < len(states); i += 2 {
		s.Components = append(s.Components, state.Component{Name: states[i], State: state.State(states[i+1])})
	}
	return s
}

// progressSteps is an up as the display sees it: snapshots at times since
// the beginning.
var progressSteps = []struct {
	at   time.Duration
	snap state.Snapshot
}{
	{0, snap("postgres", "starting", "orders", "building")},
	{1500 * time.Millisecond, snap("postgres", "healthy", "orders", "building")},
	{2 * time.Second, snap("postgres", "healthy", "orders", "waiting")},
	{2500 * time.Millisecond, state.Snapshot{Components: []state.Component{
		{Name: "postgres", State: "healthy"},
		{Name: "orders", State: "waiting", Health: "GET /readyz: 503\ndatabase not migrated"},
	}}},
	{3200 * time.Millisecond, snap("postgres", "healthy", "orders", "healthy")},
}

func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	begin := time.Unix(1000, 0)
	p := &progress{w: &out, begin: begin}
	for _, st := range progressSteps {
		p.updateAt(st.snap, begin.Add(st.at))
	}
	// A line per change only; the health detail rides on the state change
	// it came with, so the repeated waiting is not printed again.
	want := "" +
		"postgres  starting      0s\n" +
		"orders    building      0s\n" +
		"postgres  healthy     1.5s\n" +
		"orders    waiting       2s\n" +
		"orders    healthy     3.2s\n"
	if out.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	begin := time.Unix(1000, 0)
	p := &progress{w: &out, begin: begin, cols: func() int { return 40 }}
	var frames []string
	for _, st := range progressSteps {
		out.Reset()
		p.updateAt(st.snap, begin.Add(st.at))
		frames = append(frames, out.String())
	}
	const clear = "\r\x1b[J"
	want := []string{
		clear +
			"postgres  starting      0s\n" +
			"orders    building      0s\n",
		// postgres's clock stops where it got healthy; orders's runs on.
		"\x1b[2A" + clear +
			"postgres  healthy     1.5s\n" +
			"orders    building    1.5s\n",
		"\x1b[2A" + clear +
			"postgres  healthy     1.5s\n" +
			"orders    waiting       2s\n",
		// The health detail is cut to the terminal's width.
		"\x1b[2A" + clear +
			"postgres  healthy     1.5s\n" +
			"orders    waiting     2.5s  GET /ready…\n",
		"\x1b[2A" + clear +
			"postgres  healthy     1.5s\n" +
			"orders    healthy     3.2s\n",
	}
	for i := range want {
		if frames[i] != want[i] {
			t.Errorf("frame %d = %q\nwant      %q", i, frames[i], want[i])
		}
	}
}

func TestRenderFrameNewComponents(t *testing.T) {
	// A component appearing later widens the name column and adds a line;
	// the cursor goes back over the lines drawn before only.
	got := renderFrame([]progressRow{
		{Name: "etcd", State: "healthy", Elapsed: time.Second},
		{Name: "notifications", State: "starting", Elapsed: 2 * time.Second},
	}, 80, 1)
	want := "\x1b[1A\r\x1b[J" +
		"etcd           healthy       1s\n" +
		"notifications  starting      2s\n"
	if got != want {
		t.Errorf("frame = %q\nwant    %q", got, want)
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"héllo", 4, "hél…"},
		{"abc", 0, ""},
	} {
		if got := truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestNewProgressPlainWhenNotATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{f, &bytes.Buffer{}} {
		if p := newProgress(w, time.Now()); p.cols != nil {
			t.Errorf("%T: terminal form chosen", w)
		}
	}
}

func TestNewProgressTerminal(t *testing.T) {
	t.Setenv("TERM", "xterm")
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 120}); err != nil {
		t.Fatal(err)
	}
	p := newProgress(tty, time.Now())
	if p.cols == nil {
		t.Fatal("terminal not detected")
	}
	if c := p.cols(); c != 120 {
		t.Errorf("cols = %d, want 120", c)
	}
	t.Setenv("TERM", "dumb")
	if newProgress(tty, time.Now()).cols != nil {
		t.Error("TERM=dumb got the terminal form")
	}
}
