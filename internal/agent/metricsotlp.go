package agent

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/msctl/msctl/internal/state"
)

// The metrics the services export (services/kit), by name; anything else
// is ignored.
const (
	metricServerDuration  = "http.server.request.duration"
	metricClientDuration  = "http.client.request.duration"
	metricProcessDuration = "messaging.process.duration"
	metricConsumerLag     = "messaging.consumer.lag"
)

// metricsHandler receives OTLP/HTTP metric exports into store.
func metricsHandler(store *metricStore) http.Handler {
	return otlpReceiver(pmetricotlp.NewExportRequest, pmetricotlp.NewExportResponse, func(req pmetricotlp.ExportRequest) {
		store.addOTLP(req.Metrics())
	})
}

// addOTLP records the metrics of one export.
func (s *metricStore) addOTLP(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		service := attrString(res, "service.name")
		if service == "" {
			service = "unknown"
		}
		instance := attrString(res, "service.instance.id")
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				s.addMetric(service, instance, ms.At(k))
			}
		}
	}
}

func (s *metricStore) addMetric(service, instance string, m pmetric.Metric) {
	switch m.Name() {
	case metricServerDuration, metricClientDuration, metricProcessDuration:
		if m.Type() == pmetric.MetricTypeHistogram {
			s.addHistogramMetric(service, instance, m)
		}
	case metricConsumerLag:
		// A gauge by the contract; an up-down counter is the same reading.
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			dps = m.Gauge().DataPoints()
		case pmetric.MetricTypeSum:
			dps = m.Sum().DataPoints()
		default:
			return
		}
		for i := range dps.Len() {
			dp := dps.At(i)
			k, _ := keyOf(service, m.Name(), dp.Attributes())
			lag := dp.IntValue()
			if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
				lag = int64(dp.DoubleValue())
			}
			s.setLag(k, s.timeOf(dp.Timestamp()), lag)
		}
	}
}

func (s *metricStore) addHistogramMetric(service, instance string, m pmetric.Metric) {
	h := m.Histogram()
	cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
	// The contract says seconds; an exporter in milliseconds is scaled.
	scale := 1.0
	if m.Unit() == "ms" {
		scale = 0.001
	}
	dps := h.DataPoints()
	for i := range dps.Len() {
		dp := dps.At(i)
		k, failed := keyOf(service, m.Name(), dp.Attributes())
		counts := dp.BucketCounts().AsRaw()
		if cumulative {
			s.mu.Lock()
			counts = s.cum.delta(cumulativeID(instance, m.Name(), dp), counts, dp.StartTimestamp().AsTime(), s.started, s.now())
			s.mu.Unlock()
			if counts == nil {
				continue
			}
		}
		bounds := dp.ExplicitBounds().AsRaw()
		for j := range bounds {
			bounds[j] *= scale
		}
		s.addHistogram(k, s.timeOf(dp.Timestamp()), bounds, counts, failed)
	}
}

// timeOf places a data point: at its time, or on arrival when the exporter
// left it out.
func (s *metricStore) timeOf(ts pcommon.Timestamp) time.Time {
	if ts == 0 {
		return s.now()
	}
	return ts.AsTime()
}

// keyOf names the row a data point of metric belongs to and says whether
// it counts failures: a server answer ≥ 500; a client call answered ≥ 500
// or not at all (error.type); a message whose processing failed.
func keyOf(service, metric string, attrs pcommon.Map) (metricKey, bool) {
	status, _ := strconv.Atoi(attrString(attrs, "http.response.status_code"))
	_, hasErrType := attrs.Get("error.type")
	switch metric {
	case metricServerDuration:
		name := strings.TrimSpace(attrString(attrs, "http.request.method") + " " + attrString(attrs, "http.route"))
		return metricKey{service: service, kind: state.MetricRoute, name: name}, status >= 500
	case metricClientDuration:
		peer := attrString(attrs, "peer.service")
		if peer == "" {
			peer = "unknown"
		}
		return metricKey{service: service, kind: state.MetricEdge, name: peer}, status >= 500 || hasErrType
	default: // the consumer's metrics
		return metricKey{
			service: service, kind: state.MetricConsumer,
			name: attrString(attrs, "messaging.consumer.group.name"), subject: attrString(attrs, "messaging.destination.name"),
		}, hasErrType
	}
}

func attrString(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// cumulativeID names one cumulative series: the instance that counts, the
// metric, its attributes and the start of its count (a restarted exporter
// starts a new one).
func cumulativeID(instance, metric string, dp pmetric.HistogramDataPoint) string {
	var attrs []string
	dp.Attributes().Range(func(k string, v pcommon.Value) bool {
		attrs = append(attrs, k+"="+v.AsString())
		return true
	})
	slices.Sort(attrs)
	return instance + "\x00" + metric + "\x00" + strings.Join(attrs, "\x00") + "\x00" + strconv.FormatInt(int64(dp.StartTimestamp()), 10)
}

// maxCumulative bounds the cumulative series followed at once.
const maxCumulative = 5000

// cumulativeBaselines turns cumulative histograms (a Prometheus-style
// exporter, an OTel SDK left at its default) into the deltas the store
// keeps: the last counts seen per series.
type cumulativeBaselines map[string]cumulativeBaseline

type cumulativeBaseline struct {
	counts []uint64
	seen   time.Time
}

// delta returns what happened since the series' last report: all of it for
// a series that started counting after the agent did, nothing (just a
// baseline) for one that counted before, whose past the agent cannot place.
// Counts that went down mean the counter restarted: the new counts are the
// delta.
func (b cumulativeBaselines) delta(id string, counts []uint64, start, agentStart, now time.Time) []uint64 {
	prev, ok := b[id]
	if !ok && len(b) >= maxCumulative {
		b.expire(now)
		if len(b) >= maxCumulative {
			return nil
		}
	}
	b[id] = cumulativeBaseline{counts: counts, seen: now}
	if !ok {
		if start.Before(agentStart) {
			return nil
		}
		return counts
	}
	if len(prev.counts) != len(counts) {
		return counts
	}
	out := make([]uint64, len(counts))
	for i, c := range counts {
		if c < prev.counts[i] {
			return counts
		}
		out[i] = c - prev.counts[i]
	}
	return out
}

// expire forgets the series not reported over the store's whole ring.
func (b cumulativeBaselines) expire(now time.Time) {
	for id, c := range b {
		if now.Sub(c.seen) > metricSteps*metricStep {
			delete(b, id)
		}
	}
}
