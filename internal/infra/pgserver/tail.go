package pgserver

import (
	"io"
	"sync"
)

// tailWriter forwards output to an optional writer and keeps its last bytes,
// so that a failed initdb or start can say why even when logs are discarded.
type tailWriter struct {
	mu   sync.Mutex
	next io.Writer
	max  int
	buf  []byte
}

var _ io.Writer = (*tailWriter)(nil)

func newTailWriter(next io.Writer, max int) *tailWriter {
	return &tailWriter{next: next, max: max}
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	if w.next != nil {
		// A failing log sink must not stall or kill the server's output pipe.
		w.next.Write(p)
	}
	return len(p), nil
}

// String returns the retained tail of the output.
func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
