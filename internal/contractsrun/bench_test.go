package contractsrun

import (
	"context"
	"testing"

	"github.com/msctl/msctl/internal/testenv"
)

// BenchmarkVerify is a warm `msctl contracts verify`: build caches filled by
// one untimed run, then the whole Run (linking the suite, the consumer tests
// and every provider verification). verify-s is one run's wall time, the
// number a developer waits for.
func BenchmarkVerify(b *testing.B) {
	testenv.RequirePact(b)
	opts := Options{ModuleDir: moduleDir(b)}
	if _, err := Run(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	runs := 0
	for b.Loop() {
		rep, err := Run(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK {
			b.Fatalf("verification failed: %+v", rep.Failures)
		}
		runs++
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(runs), "verify-s")
}
