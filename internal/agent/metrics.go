package agent

import (
	"cmp"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// Bounds and resolution of the metrics store: 2 s steps (the services
// export every 2 s) kept for 5 minutes, figures taken over the last 10 s.
const (
	metricStep        = 2 * time.Second
	metricSteps       = 150
	metricWindowSteps = 5
	// maxMetricSeries bounds the rows kept (service × route, peer or
	// consumer); a series beyond it is not recorded.
	maxMetricSeries = 500
)

// metricKey names one row of the store.
type metricKey struct {
	service string
	kind    state.MetricKind
	name    string
	subject string
}

// metricSlot is what one step of one series received, all instances of the
// service merged.
type metricSlot struct {
	idx     int64 // the step's number (time / metricStep); a slot with another number is empty
	count   uint64
	errs    uint64
	buckets []uint64 // per bucket of the series' bounds, the overflow bucket last
	lag     int64
	hasLag  bool
}

type metricSeries struct {
	bounds      []float64 // upper bounds in seconds, from the first data point
	slots       [metricSteps]metricSlot
	newest      int64 // the newest step with data
	total, errs uint64
}

// metricStore keeps the services' RED metrics as a ring of fixed steps per
// series: bounded in series and in time, however much the services send.
type metricStore struct {
	now     func() time.Time
	started time.Time

	mu     sync.Mutex
	series map[metricKey]*metricSeries
	cum    cumulativeBaselines
}

func newMetricStore(now func() time.Time) *metricStore {
	return &metricStore{now: now, started: now(), series: map[metricKey]*metricSeries{}, cum: cumulativeBaselines{}}
}

func stepOf(t time.Time) int64 { return t.UnixNano() / int64(metricStep) }

// slot returns the series' slot for the step at t, emptied if it held an
// older step; nil when t is older than the ring. A time in the future (a
// service's clock ahead of ours) counts as now. Callers hold mu.
func (s *metricStore) slot(k metricKey, t time.Time) *metricSlot {
	now := stepOf(s.now())
	idx := min(stepOf(t), now)
	if idx <= now-metricSteps {
		return nil
	}
	ser := s.series[k]
	if ser == nil {
		if len(s.series) >= maxMetricSeries {
			s.expire(now)
			if len(s.series) >= maxMetricSeries {
				return nil
			}
		}
		ser = &metricSeries{}
		s.series[k] = ser
	}
	sl := &ser.slots[idx%metricSteps]
	if sl.idx != idx {
		clear(sl.buckets) // kept for the next histogram of the series
		*sl = metricSlot{idx: idx, buckets: sl.buckets}
	}
	ser.newest = max(ser.newest, idx)
	return sl
}

// addHistogram records one histogram data point's delta: counts per bucket
// of bounds (seconds), all of them failures or none.
func (s *metricStore) addHistogram(k metricKey, t time.Time, bounds []float64, counts []uint64, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slot(k, t)
	if sl == nil {
		return
	}
	ser := s.series[k]
	if ser.bounds == nil {
		ser.bounds = slices.Clone(bounds)
	}
	if len(sl.buckets) == 0 {
		sl.buckets = make([]uint64, len(ser.bounds)+1)
	}
	var n uint64
	for i, c := range counts {
		// An instance with other bounds: each bucket goes where its upper
		// bound falls among the series' bounds (the same index when equal).
		j := len(ser.bounds)
		if i < len(bounds) {
			j = sort.SearchFloat64s(ser.bounds, bounds[i])
		}
		sl.buckets[j] += c
		n += c
	}
	sl.count += n
	ser.total += n
	if failed {
		sl.errs += n
		ser.errs += n
	}
}

// setLag records a consumer's backlog at t; the latest report of a step wins
// (every instance of a service reports the same shared consumer).
func (s *metricStore) setLag(k metricKey, t time.Time, lag int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := s.slot(k, t); sl != nil {
		sl.lag, sl.hasLag = lag, true
	}
}

// expire drops the series nothing was received for over the whole ring.
// Callers hold mu.
func (s *metricStore) expire(now int64) {
	for k, ser := range s.series {
		if ser.newest <= now-metricSteps {
			delete(s.series, k)
		}
	}
	s.cum.expire(s.now())
}

// snapshot computes every row's figures (only service's when not empty).
func (s *metricStore) snapshot(service string) state.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	nowT := s.now()
	now := stepOf(nowT)
	s.expire(now)
	out := state.Metrics{
		TakenAt: nowT.UTC(), StepMS: metricStep.Milliseconds(),
		WindowMS: (metricWindowSteps * metricStep).Milliseconds(), Rows: []state.MetricRow{},
	}
	for k, ser := range s.series {
		if service == "" || k.service == service {
			out.Rows = append(out.Rows, ser.row(k, now))
		}
	}
	out.Rows = foldLag(out.Rows)
	kindOrder := map[state.MetricKind]int{state.MetricRoute: 0, state.MetricEdge: 1, state.MetricConsumer: 2}
	slices.SortFunc(out.Rows, func(a, b state.MetricRow) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]),
			cmp.Compare(a.Name, b.Name), cmp.Compare(a.Subject, b.Subject))
	})
	return out
}

// foldLag shows a consumer's lag on the rows of what it processed. The
// lag is the durable's, which services may report on its stream
// (ORDERS_EVT) while they report processing per subject
// (orders.evt.created): such a lag-only row joins every row of its durable
// that processed messages. A durable with lags on several streams, or
// that processed nothing, keeps its lag rows.
func foldLag(rows []state.MetricRow) []state.MetricRow {
	type durable struct{ service, name string }
	processed := map[durable]bool{}
	lags := map[durable][]state.MetricRow{}
	for _, r := range rows {
		d := durable{r.Service, r.Name}
		switch {
		case r.Kind != state.MetricConsumer:
		case r.Total > 0:
			processed[d] = true
		case r.Lag != nil:
			lags[d] = append(lags[d], r)
		}
	}
	fold := func(r state.MetricRow) bool {
		d := durable{r.Service, r.Name}
		return r.Kind == state.MetricConsumer && processed[d] && len(lags[d]) == 1
	}
	kept := rows[:0]
	for _, r := range rows {
		if fold(r) {
			if r.Total == 0 {
				continue
			}
			if r.Lag == nil {
				l := lags[durable{r.Service, r.Name}][0]
				r.Lag, r.LagSeries = l.Lag, l.LagSeries
			}
		}
		kept = append(kept, r)
	}
	return kept
}

// row is one series' figures as of step now.
func (ser *metricSeries) row(k metricKey, now int64) state.MetricRow {
	r := state.MetricRow{
		Service: k.service, Kind: k.kind, Name: k.name, Subject: k.subject,
		Total: ser.total, TotalErrors: ser.errs,
		RPSSeries: make([]float64, metricSteps), P99Series: make([]float64, metricSteps),
	}
	window := make([]uint64, len(ser.bounds)+1)
	var errs uint64
	var lag int64
	var hasLag bool
	var lags []int64
	for i := range int64(metricSteps) {
		idx := now - metricSteps + 1 + i
		sl := &ser.slots[idx%metricSteps]
		if sl.idx == idx {
			r.RPSSeries[i] = float64(sl.count) / metricStep.Seconds()
			r.P99Series[i] = quantile(0.99, ser.bounds, sl.buckets) * 1000
			if idx > now-metricWindowSteps {
				r.Requests += sl.count
				errs += sl.errs
				for j, c := range sl.buckets {
					window[j] += c
				}
			}
			if sl.hasLag {
				lag, hasLag = sl.lag, true
			}
		}
		// A consumer's lag holds between reports.
		lags = append(lags, lag)
	}
	if r.Requests > 0 {
		r.RPS = float64(r.Requests) / (metricWindowSteps * metricStep).Seconds()
		r.ErrorPct = 100 * float64(errs) / float64(r.Requests)
		r.P50MS = quantile(0.5, ser.bounds, window) * 1000
		r.P99MS = quantile(0.99, ser.bounds, window) * 1000
	}
	if hasLag {
		r.Lag, r.LagSeries = &lag, lags
	}
	if ser.total == 0 { // a lag-only series: no rates to draw
		r.RPSSeries, r.P99Series = nil, nil
	}
	return r
}

// quantile estimates the q-quantile of a histogram, interpolating linearly
// within the bucket it falls in (as Prometheus' histogram_quantile does);
// in the overflow bucket it is the highest bound, all that is known. Zero
// when the histogram is empty.
func quantile(q float64, bounds []float64, counts []uint64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(bounds) == 0 {
		return 0
	}
	rank := q * float64(total)
	var below float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if i >= len(bounds) {
			break
		}
		if below+float64(c) >= rank {
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			return lo + (bounds[i]-lo)*(rank-below)/float64(c)
		}
		below += float64(c)
	}
	return bounds[len(bounds)-1]
}

// metricsRoutes serves GET /api/metrics[?service=S].
func (a *Agent) metricsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/metrics", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.metrics.snapshot(r.URL.Query().Get("service")))
	})
}
