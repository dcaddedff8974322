package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoadObservability(t *testing.T) {
	m, err := Load(workspace(t, `project: shop
observability:
  export: http://localhost:4318
  traces:
    max_size: 256MiB
    max_age: 72h
services:
  users: {}
`, "services/users"))
	if err != nil {
		t.Fatal(err)
	}
	want := Observability{Export: "http://localhost:4318", TracesMaxSize: 256 << 20, TracesMaxAge: 72 * time.Hour}
	if m.Observability != want {
		t.Errorf("Observability = %+v, want %+v", m.Observability, want)
	}
	m, err = Load(workspace(t, "project: shop\nobservability:\n  traces: {max_size: 5000000}\nservices:\n  users: {}\n", "services/users"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Observability != (Observability{TracesMaxSize: 5e6}) {
		t.Errorf("plain bytes: Observability = %+v", m.Observability)
	}
}

func TestLoadObservabilityErrors(t *testing.T) {
	for _, tt := range []struct{ name, yml, want string }{
		{"export scheme", "observability:\n  export: localhost:4318\n", `3: observability.export "localhost:4318": the OTLP/HTTP endpoint must be an http:// or https:// URL`},
		{"export query", "observability:\n  export: http://h:4318?x=1\n", `3: observability.export "http://h:4318?x=1": remove the query`},
		{"size unit", "observability:\n  traces:\n    max_size: 64 potatoes\n", `4: observability.traces.max_size "64 potatoes" is not a size of at least 1MiB`},
		{"size too small", "observability:\n  traces:\n    max_size: 10KiB\n", `4: observability.traces.max_size "10KiB" is not a size of at least 1MiB`},
		{"age", "observability:\n  traces:\n    max_age: 3d\n", `4: observability.traces.max_age "3d" is not a duration of at least 1m`},
		{"unknown key", "observability:\n  trace: {}\n", `3: unknown key "observability.trace"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := workspace(t, "project: shop\n"+tt.yml+"services:\n  users: {}\n", "services/users")
			_, err := Load(p)
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("err = %v, want one error", err)
			}
			if want := p + ":" + tt.want; !strings.HasPrefix(es[0].Error(), want) || es[0].Fix == "" {
				t.Errorf("err = %q, want prefix %q and a fix", es[0], want)
			}
		})
	}
}
