package agent

import (
	"path/filepath"

	"github.com/msctl/msctl/internal/otlpexport"
	"github.com/msctl/msctl/internal/tracestore"
)

// openTelemetry opens the trace store in the state directory, bounded as
// msctl.yaml's observability.traces says, and starts the exporter when
// observability.export names an endpoint.
func (a *Agent) openTelemetry() error {
	o := a.m.Observability
	var err error
	a.traces, err = tracestore.Open(filepath.Join(a.stateDir, tracestore.FileName),
		tracestore.Options{MaxSize: o.TracesMaxSize, MaxAge: o.TracesMaxAge},
		func(err error) { a.log.Warn("trace store: spans lost", "err", err) })
	if err != nil {
		return err
	}
	if o.Export != "" {
		if a.export, err = otlpexport.New(o.Export); err != nil {
			a.traces.Close()
			return err
		}
		a.log.Info("forwarding OTLP", "to", o.Export)
	}
	return nil
}

// closeTelemetry stops the exporter, then writes what the store has queued
// and closes it; the OTLP server is closed before, so nothing more arrives.
func (a *Agent) closeTelemetry() {
	a.export.Close()
	if err := a.traces.Close(); err != nil {
		a.log.Warn("trace store", "err", err)
	}
}
