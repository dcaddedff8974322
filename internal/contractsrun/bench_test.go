package contractsrun

import (
	"context"
	"testing"

	"github.com/msctl/msctl/internal/testenv"
)

// BenchmarkVerify is a warm `msctl contracts verify`: build caches filled by
// one untimed run, then consumer tests and every provider verification.
func BenchmarkVerify(b *testing.B) {
	testenv.RequirePact(b)
	opts := Options{ModuleDir: moduleDir(b)}
	if _, err := Run(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rep, err := Run(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK {
			b.Fatalf("verification failed: %+v", rep.Failures)
		}
	}
}
