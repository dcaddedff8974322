package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/services/kit/tracing"
)

// ExportersEnv is the OpenTelemetry variable naming the metric exporters: a comma-separated list
// of otlp and prometheus (default both), or none.
const ExportersEnv = "OTEL_METRICS_EXPORTER"

type exporters struct{ otlp, prometheus bool }

func exportersFromEnv(lookup func(string) (string, bool)) (exporters, error) {
	v, _ := lookup(ExportersEnv)
	if strings.TrimSpace(v) == "" {
		return exporters{otlp: true, prometheus: true}, nil
	}
	var ex exporters
	for _, name := range strings.Split(v, ",") {
		switch strings.TrimSpace(name) {
		case "otlp":
			ex.otlp = true
		case "prometheus":
			ex.prometheus = true
		case "none":
		default:
			return exporters{}, fmt.Errorf("%s=%s: %q is no exporter of ours; want otlp, prometheus (both by default) or none",
				ExportersEnv, v, strings.TrimSpace(name))
		}
	}
	return ex, nil
}

// MetricsEndpointEnv is OpenTelemetry's metrics-only OTLP endpoint, a full URL used as it is:
// metrics exported without turning on the traces OTEL_EXPORTER_OTLP_ENDPOINT would.
const MetricsEndpointEnv = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"

// metricsURL is where metrics are exported over OTLP; "" for nowhere.
func metricsURL(endpoint string, lookup func(string) (string, bool)) string {
	if v, _ := lookup(MetricsEndpointEnv); strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	if endpoint = strings.TrimSpace(endpoint); endpoint != "" {
		return tracing.SignalURL(endpoint, "metrics")
	}
	return ""
}

// intervalFromEnv reads OTEL_METRIC_EXPORT_INTERVAL: milliseconds as OpenTelemetry defines it,
// or a Go duration such as 5s.
func intervalFromEnv(lookup func(string) (string, bool)) (time.Duration, error) {
	v, ok := lookup(IntervalEnv)
	if v = strings.TrimSpace(v); !ok || v == "" {
		return DefaultInterval, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms <= 0 {
			return 0, fmt.Errorf("%s=%s: must be positive, e.g. %s=2000 (milliseconds)", IntervalEnv, v, IntervalEnv)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New(IntervalEnv + "=" + v + ": want milliseconds, e.g. " + IntervalEnv + "=2000")
	}
	return d, nil
}
