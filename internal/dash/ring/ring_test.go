package ring

import (
	"slices"
	"testing"
)

func contents(b *Buffer[int]) []int {
	out := make([]int, 0, b.Len())
	for i := range b.Len() {
		out = append(out, b.At(i))
	}
	return out
}

func TestBuffer(t *testing.T) {
	tests := []struct {
		name string
		cap  int
		push int
		want []int
	}{
		{"empty", 3, 0, []int{}},
		{"partial", 3, 2, []int{0, 1}},
		{"full", 3, 3, []int{0, 1, 2}},
		{"wrapped", 3, 7, []int{4, 5, 6}},
		{"zero capacity keeps one", 0, 4, []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New[int](tt.cap)
			for i := range tt.push {
				b.Push(i)
			}
			if got := contents(b); !slices.Equal(got, tt.want) {
				t.Fatalf("contents = %v, want %v", got, tt.want)
			}
			b.Reset()
			if b.Len() != 0 {
				t.Fatalf("Len after Reset = %d", b.Len())
			}
		})
	}
}

func TestAtOutOfRangePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("At(1) on a one-value buffer did not panic")
		}
	}()
	b := New[int](2)
	b.Push(1)
	b.At(1)
}
