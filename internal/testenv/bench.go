package testenv

import (
	"testing"
	"time"
)

// TimeBoth runs msctl's side and the other tool's side of a comparison
// benchmark in turn, b.N times each, on the benchmark's timer, and returns
// what each side took in all.
func TimeBoth(b *testing.B, msctl, other func() time.Duration) (msctlTotal, otherTotal time.Duration) {
	b.ResetTimer()
	for range b.N {
		msctlTotal += msctl()
		otherTotal += other()
	}
	b.StopTimer()
	return msctlTotal, otherTotal
}
