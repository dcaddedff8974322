package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is one closed-loop run against one URL.
type loadResult struct {
	done    int
	elapsed time.Duration
	lat     []time.Duration // sorted
}

func (r loadResult) rps() float64 { return float64(r.done) / r.elapsed.Seconds() }

// pct is the p-th quantile (0..1) in milliseconds.
func (r loadResult) pct(p float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	i := min(len(r.lat)-1, int(float64(len(r.lat))*p))
	return float64(r.lat[i]) / float64(time.Millisecond)
}

// load sends total GETs to url over conns keep-alive connections, each
// connection waiting for its answer before the next request (closed loop),
// and stops early at limit. Any transport error or non-200 answer fails the
// run: a proxy that drops requests has no throughput worth comparing.
func load(ctx context.Context, url string, total, conns int, limit time.Duration) (loadResult, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	}
	// Open every connection before the clock starts.
	if err := parallel(conns, func(int) error { return get() }); err != nil {
		return loadResult{}, fmt.Errorf("warm up: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var next atomic.Int64
	lats := make([][]time.Duration, conns)
	start := time.Now()
	err := parallel(conns, func(w int) error {
		lats[w] = make([]time.Duration, 0, total/conns+1)
		for ctx.Err() == nil && next.Add(1) <= int64(total) {
			t0 := time.Now()
			if err := get(); err != nil {
				return err
			}
			lats[w] = append(lats[w], time.Since(t0))
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return loadResult{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return loadResult{done: len(all), elapsed: elapsed, lat: all}, nil
}

// parallel runs fn(0..n-1) concurrently and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
