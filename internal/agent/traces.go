package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/msctl/msctl/internal/otlpexport"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/tracestore"
)

// traceRoutes serves the trace store: GET /api/traces lists, GET
// /api/traces/{id} gives one trace's spans. Both write what is queued
// first, so that a reader sees every span the receiver acknowledged.
func (a *Agent) traceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, r *http.Request) {
		q, err := traceQuery(r.URL.Query())
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_query", err.Error())
			return
		}
		a.traces.Flush()
		list, err := a.traces.List(q)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "trace_store", err.Error())
			return
		}
		if list == nil {
			list = []state.TraceSummary{}
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("GET /api/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		a.traces.Flush()
		spans, err := a.traces.Trace(r.PathValue("id"))
		switch {
		case errors.Is(err, tracestore.ErrNotFound):
			writeError(w, http.StatusNotFound, "not_found", "no trace "+r.PathValue("id")+" (msctl traces lists them)")
		case err != nil:
			writeError(w, http.StatusInternalServerError, "trace_store", err.Error())
		default:
			writeJSON(w, http.StatusOK, spans)
		}
	})
}

// traceQuery reads service, since (a duration) and limit.
func traceQuery(v url.Values) (tracestore.Query, error) {
	q := tracestore.Query{Service: v.Get("service")}
	if s := v.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return q, fmt.Errorf("since %q is not a duration like 10m", s)
		}
		q.Since = time.Now().Add(-d)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("limit %q is not a count", s)
		}
		q.Limit = n
	}
	return q, nil
}

// Traces lists the traces the agent stored, newest first: service and since
// (how far back a trace may have started; 0 is no bound) select, limit (0:
// all) caps.
func (c *Client) Traces(ctx context.Context, service string, since time.Duration, limit int) ([]state.TraceSummary, error) {
	v := url.Values{}
	if service != "" {
		v.Set("service", service)
	}
	if since > 0 {
		v.Set("since", since.String())
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var list []state.TraceSummary
	err := c.do(ctx, http.MethodGet, "/api/traces?"+v.Encode(), &list)
	return list, err
}

// Trace returns the spans of one trace, ordered by start.
func (c *Client) Trace(ctx context.Context, id string) ([]state.Span, error) {
	var spans []state.Span
	err := c.do(ctx, http.MethodGet, "/api/traces/"+url.PathEscape(id), &spans)
	return spans, err
}

// tracesHandler receives OTLP/HTTP trace exports: it queues the spans for
// the store and the request for the exporter (nil: none), waiting for
// neither.
func tracesHandler(store *tracestore.Store, exp *otlpexport.Exporter) http.Handler {
	return otlpReceiver("traces", exp, ptraceotlp.NewExportRequest, ptraceotlp.NewExportResponse, func(req ptraceotlp.ExportRequest) {
		store.Add(spansOf(req.Traces()))
	})
}

// spansOf flattens pdata traces into snapshot spans.
func spansOf(td ptrace.Traces) []state.Span {
	var out []state.Span
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		service := "unknown"
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			service = v.AsString()
		}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				s := state.Span{
					TraceID:  sp.TraceID().String(),
					SpanID:   sp.SpanID().String(),
					Service:  service,
					Name:     sp.Name(),
					Kind:     strings.ToLower(sp.Kind().String()),
					Start:    sp.StartTimestamp().AsTime(),
					Duration: sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()),
					Error:    sp.Status().Code() == ptrace.StatusCodeError,
				}
				if p := sp.ParentSpanID(); !p.IsEmpty() {
					s.ParentID = p.String()
				}
				if sp.Attributes().Len() > 0 {
					s.Attrs = make(map[string]string, sp.Attributes().Len())
					sp.Attributes().Range(func(k string, v pcommon.Value) bool {
						s.Attrs[k] = v.AsString()
						return true
					})
				}
				out = append(out, s)
			}
		}
	}
	return out
}
