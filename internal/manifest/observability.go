package manifest

import (
	"regexp"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/msctl/msctl/internal/otlpexport"
)

// Observability holds what the agent does with the telemetry it receives.
// Every field is optional.
type Observability struct {
	// Export is an OTLP/HTTP endpoint the agent forwards what it receives
	// to (e.g. http://localhost:4318); empty: none. up --otlp-export
	// overrides it.
	Export string
	// TracesMaxSize and TracesMaxAge bound the trace store in .msctl/;
	// zero means the store's defaults.
	TracesMaxSize int64
	TracesMaxAge  time.Duration
}

var (
	observabilityKeys = []string{"export", "traces"}
	tracesKeys        = []string{"max_size", "max_age"}
	sizeRE            = regexp.MustCompile(`^(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$`)
	sizeUnits         = map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
)

// observability reads the observability: section.
func (p *parser) observability(fields map[string]keyVal, m *Manifest) {
	kv, ok := fields["observability"]
	if !ok {
		return
	}
	of := p.mapping(kv.val, "observability", "observability.", observabilityKeys)
	if v, ok := of["export"]; ok {
		m.Observability.Export = p.str(v.val, "observability.export")
		if err := CheckExport(m.Observability.Export); err != nil {
			p.errorf(v.val, "set export: to the OTLP/HTTP endpoint of Jaeger, Tempo or a collector, e.g. http://localhost:4318", "observability.export %v", err)
		}
	}
	tv, ok := of["traces"]
	if !ok {
		return
	}
	tf := p.mapping(tv.val, "observability.traces", "observability.traces.", tracesKeys)
	if v, ok := tf["max_size"]; ok {
		m.Observability.TracesMaxSize = p.size(v.val, "observability.traces.max_size")
	}
	if v, ok := tf["max_age"]; ok {
		d, err := time.ParseDuration(p.str(v.val, "observability.traces.max_age"))
		if err != nil || d < time.Minute {
			p.errorf(v.val, "write a duration of at least a minute, e.g. max_age: 24h or 168h (a week)", "observability.traces.max_age %q is not a duration of at least 1m", v.val.Value)
		}
		m.Observability.TracesMaxAge = d
	}
}

// CheckExport validates an OTLP export endpoint (observability.export or
// --otlp-export); empty is none and valid.
func CheckExport(url string) error {
	if url == "" {
		return nil
	}
	return otlpexport.CheckURL(url)
}

// size reads a byte size such as 64MiB, 500MB or 1048576, at least 1 MiB.
func (p *parser) size(n *yaml.Node, what string) int64 {
	m := sizeRE.FindStringSubmatch(p.str(n, what))
	var v int64
	if m != nil {
		num, err := strconv.ParseInt(m[1], 10, 64)
		if err == nil && num <= 1<<40/sizeUnits[m[2]] {
			v = num * sizeUnits[m[2]]
		}
	}
	if v < 1<<20 {
		p.errorf(n, "write a size of at least 1MiB with a unit, e.g. max_size: 64MiB or 1GiB", "%s %q is not a size of at least 1MiB", what, n.Value)
		return 0
	}
	return v
}
