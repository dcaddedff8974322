// Package metricstest reads a service's metrics the way a Prometheus scraper does, for tests of
// the code that records them: Setup gives a fresh provider, Scrape parses GET /metrics.
package metricstest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/msctl/msctl/services/kit/metrics"
)

// Prometheus names of the kit's instruments (dots become underscores, the unit a suffix).
const (
	ServerDuration  = "http_server_request_duration_seconds"
	ClientDuration  = "http_client_request_duration_seconds"
	ProcessDuration = "messaging_process_duration_seconds"
	ConsumerLag     = "messaging_consumer_lag"
)

// Setup installs a fresh meter provider without OTLP export for the test and shuts it down at its
// end. Tests using it must not run in parallel: the kit records into the last one installed.
func Setup(t testing.TB) *metrics.Metrics {
	t.Helper()
	m, err := metrics.Setup(context.Background(), "test", "", metrics.WithInstance("test-1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	return m
}

// Families is one scrape, by metric family name.
type Families map[string]*dto.MetricFamily

// Scrape requests GET /metrics from h and parses the Prometheus text answer.
func Scrape(t testing.TB, h http.Handler) Families {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// Count is the number of observations of the histogram family name over the series carrying all
// the labels given (other labels may be anything).
func (f Families) Count(name string, labels map[string]string) uint64 {
	var n uint64
	for _, m := range f.series(name, labels) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// Gauge is the value of the gauge family name's series carrying the labels; ok is false when no
// such series exists.
func (f Families) Gauge(name string, labels map[string]string) (v float64, ok bool) {
	ms := f.series(name, labels)
	if len(ms) == 0 {
		return 0, false
	}
	return ms[0].GetGauge().GetValue(), true
}

// Labels lists the label sets of the family name's series.
func (f Families) Labels(name string) []map[string]string {
	var out []map[string]string
	for _, m := range f.series(name, nil) {
		out = append(out, labelMap(m))
	}
	return out
}

func (f Families) series(name string, labels map[string]string) []*dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range fam.GetMetric() {
		got := labelMap(m)
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
