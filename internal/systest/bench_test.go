package systest_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSaga measures the saga end to end: orders accepted over HTTP by
// 20 concurrent clients until each is CONFIRMED or CANCELLED. One iteration
// is a batch of SAGA_BENCH_ORDERS orders (default 10000), so run it with
// -benchtime=1x. Reported: orders/s (first accept to last outcome) and the
// p50/p99 of accept-to-outcome latency as the orders database recorded it,
// and how many accepted orders did not reach an outcome within 5 minutes.
func BenchmarkSaga(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("SAGA_BENCH_ORDERS")); err == nil && v > 0 {
		n = v
	}
	s := startShop(b, nil)
	s.setStock(loadProducts, 1_000_000_000)
	b.ResetTimer()
	for i := range b.N {
		prefix := fmt.Sprintf("bench%d", i)
		start := time.Now()
		res := s.load(n, 20, prefix, nil)
		// Bounded: an order still not final after the wait counts as lost.
		final := func() int {
			return s.count("orders", `SELECT count(*) FROM orders WHERE user_id LIKE $1 AND status <> 'PENDING'`, prefix+"-%")
		}
		deadline := time.Now().Add(5 * time.Minute)
		for final() < len(res.ids) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		elapsed := time.Since(start)
		lost := len(res.ids) - final()
		var p50, p99 float64
		var confirmed int
		if err := s.dbs["orders"].QueryRow(context.Background(), `SELECT
				percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)),
				percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)),
				count(*) FILTER (WHERE status = 'CONFIRMED')
			FROM orders WHERE user_id LIKE $1`, prefix+"-%").Scan(&p50, &p99, &confirmed); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(res.ids))/elapsed.Seconds(), "orders/s")
		b.ReportMetric(p50*1000, "p50-ms")
		b.ReportMetric(p99*1000, "p99-ms")
		b.ReportMetric(float64(len(res.ids)-confirmed-lost), "cancelled")
		b.ReportMetric(float64(lost), "lost")
		b.Logf("%d orders accepted in %v, all final after %v", len(res.ids), res.elapsed, elapsed)
	}
}
