// Package ring is a fixed-capacity FIFO buffer: the dashboard keeps logs and
// events in one so that a long session never holds more than a screenful's
// worth of history times a constant.
package ring

// Buffer holds the last Cap() values pushed; older ones are overwritten.
type Buffer[T any] struct {
	buf   []T
	start int // index of the oldest value
	n     int
}

// New returns an empty buffer that keeps at most capacity values (at least 1).
func New[T any](capacity int) *Buffer[T] {
	if capacity < 1 {
		capacity = 1
	}
	return &Buffer[T]{buf: make([]T, capacity)}
}

// Push appends v, dropping the oldest value when the buffer is full.
func (b *Buffer[T]) Push(v T) {
	if b.n < len(b.buf) {
		b.buf[(b.start+b.n)%len(b.buf)] = v
		b.n++
		return
	}
	b.buf[b.start] = v
	b.start = (b.start + 1) % len(b.buf)
}

// Len is the number of values held.
func (b *Buffer[T]) Len() int { return b.n }

// Cap is the most values the buffer holds.
func (b *Buffer[T]) Cap() int { return len(b.buf) }

// At returns the i-th value, 0 being the oldest; it panics when i is out of range.
func (b *Buffer[T]) At(i int) T {
	if i < 0 || i >= b.n {
		panic("ring: index out of range")
	}
	return b.buf[(b.start+i)%len(b.buf)]
}

// Reset empties the buffer, releasing references to the values it held.
func (b *Buffer[T]) Reset() {
	clear(b.buf)
	b.start, b.n = 0, 0
}
