package dash

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// now is the fixed clock of every test.
var now = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return now }

func ago(d time.Duration) time.Time { return now.Add(-d) }

// fixture is a workspace with every panel populated: six healthy services
// but one, a trace with an error, an open breaker.
func fixture() state.Snapshot {
	svc := func(name, endpoint string, pid, restarts int, up time.Duration) state.Component {
		return state.Component{
			Name: name, Kind: state.KindService, State: state.StateHealthy, Health: "ok",
			Endpoint: endpoint, PID: pid, Restarts: restarts, Instances: 1, StartedAt: ago(up),
		}
	}
	comps := []state.Component{
		{Name: "postgres", Kind: state.KindInfra, State: state.StateHealthy, Health: "ok", Endpoint: "127.0.0.1:35001", PID: 4001, StartedAt: ago(2 * time.Hour)},
		{Name: "nats", Kind: state.KindInfra, State: state.StateHealthy, Health: "ok", Endpoint: "nats://127.0.0.1:35002", StartedAt: ago(2 * time.Hour)},
		{Name: "etcd", Kind: state.KindInfra, State: state.StateHealthy, Health: "ok", Endpoint: "http://127.0.0.1:35003", StartedAt: ago(2 * time.Hour)},
		svc("users", "127.0.0.1:41001", 4101, 0, 2*time.Hour),
		svc("inventory", "127.0.0.1:41002", 4102, 0, 2*time.Hour),
		svc("payments", "127.0.0.1:41003", 4103, 2, 95*time.Second),
		svc("orders", "127.0.0.1:41004", 4104, 0, 2*time.Hour),
		svc("notifications", "127.0.0.1:41005", 4105, 0, 2*time.Hour),
		svc("gateway", "http://127.0.0.1:8080", 4106, 0, 2*time.Hour),
	}
	comps[5].State = state.StateUnhealthy
	comps[5].Health = "readyz: dial tcp 127.0.0.1:35001: connect: connection refused"
	comps[5].Instances = 0

	reg := map[string][]state.Instance{}
	for _, c := range comps[3:] {
		if c.Instances == 0 {
			continue
		}
		reg[c.Name] = []state.Instance{{ID: c.Name + "-1a2b3c", Service: c.Name, Addr: c.Endpoint, StartedAt: c.StartedAt}}
	}
	reg["orders"] = append(reg["orders"], state.Instance{ID: "orders-4d5e6f", Service: "orders", Addr: "127.0.0.1:41014", StartedAt: ago(10 * time.Minute)})

	var traces []state.TraceSummary
	for i := range 12 {
		traces = append(traces, state.TraceSummary{
			TraceID:  fmt.Sprintf("%032x", 0xabc000+i),
			Root:     "gateway: GET /api/v1/products",
			Services: []string{"gateway", "inventory"},
			Start:    ago(time.Duration(30+i) * time.Second),
			Duration: time.Duration(1200+i*37) * time.Microsecond,
			Spans:    3,
		})
	}
	traces = append(traces,
		state.TraceSummary{
			TraceID: orderTrace, Root: "gateway: POST /api/v1/orders",
			Services: []string{"gateway", "orders", "inventory", "payments"},
			Start:    ago(5 * time.Second), Duration: 48200 * time.Microsecond, Spans: 9, Errors: 1,
		},
		state.TraceSummary{
			TraceID: "00000000000000000000000000def001", Root: "users: POST /api/v1/auth/login",
			Services: []string{"gateway", "users"},
			Start:    ago(8 * time.Second), Duration: 61 * time.Millisecond, Spans: 4,
		})

	breakers := []state.Breaker{
		{Service: "gateway", Name: "users", State: "closed", Requests: 120, TotalSuccesses: 120},
		{Service: "gateway", Name: "payments", State: "open", Requests: 0, TotalFailures: 7, ConsecutiveFailures: 5, OpenUntil: now.Add(4200 * time.Millisecond)},
		{Service: "gateway", Name: "orders", State: "half-open", Requests: 1, TotalSuccesses: 40, TotalFailures: 3, ConsecutiveFailures: 0},
		{Service: "orders", Name: "payments", State: "closed", Requests: 12, TotalSuccesses: 11, TotalFailures: 1, ConsecutiveFailures: 1},
	}

	var events []state.Event
	subjects := []struct{ subject, stream string }{
		{"orders.created", "ORDERS"}, {"inventory.reserve", "INVENTORY"}, {"inventory.reserved", "INVENTORY"},
		{"payments.charge", "PAYMENTS"}, {"payments.charged", "PAYMENTS"}, {"orders.confirmed", "ORDERS"},
	}
	for i := range 18 {
		s := subjects[i%len(subjects)]
		events = append(events, state.Event{
			Time: ago(time.Duration(18-i) * 700 * time.Millisecond), Subject: s.subject, Stream: s.stream,
			MsgID: fmt.Sprintf("msg-%04d", i), Size: 180 + i,
		})
	}

	return state.Snapshot{
		Workspace: "shop", Runtime: "local", AgentPID: 4000, StartedAt: ago(2*time.Hour + 3*time.Minute),
		TakenAt: now, GatewayURL: "http://127.0.0.1:8080",
		Components: comps, Registry: reg, Traces: traces, Breakers: breakers, Events: events,
		Deliveries: []state.Delivery{
			{Stream: "INVENTORY", Consumer: "inventory-reserve", Delivered: 6, Redelivered: 1},
			{Stream: "ORDERS", Consumer: "notifications-orders", Delivered: 6},
			{Stream: "PAYMENTS", Consumer: "payments-charge", Delivered: 6, Redelivered: 2},
		},
	}
}

const orderTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

// orderSpans is the order trace: gateway → orders → inventory and payments,
// with the payment charge failing once and being retried.
func orderSpans() []state.Span {
	t0 := ago(5 * time.Second)
	span := func(id, parent, svc, name, kind string, start, dur time.Duration, failed bool) state.Span {
		return state.Span{
			TraceID: orderTrace, SpanID: id, ParentID: parent, Service: svc, Name: name, Kind: kind,
			Start: t0.Add(start), Duration: dur, Error: failed,
		}
	}
	ms := time.Millisecond
	spans := []state.Span{
		span("01", "", "gateway", "POST /api/v1/orders", "server", 0, 48200*time.Microsecond, false),
		span("02", "01", "gateway", "POST orders", "client", 1*ms, 45*ms, false),
		span("03", "02", "orders", "POST /api/v1/orders", "server", 2*ms, 42*ms, false),
		span("04", "03", "orders", "INSERT orders", "client", 3*ms, 4*ms, false),
		span("05", "03", "orders", "publish orders.created", "producer", 8*ms, 1*ms, false),
		span("06", "03", "inventory", "reserve stock", "consumer", 10*ms, 9*ms, false),
		span("07", "03", "payments", "POST /internal/charges", "server", 20*ms, 6*ms, true),
		span("08", "03", "payments", "POST /internal/charges", "server", 28*ms, 12*ms, false),
		span("09", "08", "payments", "INSERT charges", "client", 30*ms, 3*ms, false),
	}
	spans[6].Attrs = map[string]string{"http.status_code": "503", "error.message": "card processor unavailable"}
	return spans
}

func fixtureLogs() []state.LogLine {
	var lines []state.LogLine
	svcs := []string{"gateway", "orders", "inventory", "payments"}
	for i := range 40 {
		svc := svcs[i%len(svcs)]
		l := state.LogLine{Time: ago(time.Duration(40-i) * 250 * time.Millisecond), Service: svc, Stream: "stdout",
			Text: fmt.Sprintf(`{"time":"x","level":"INFO","msg":"request handled","service":%q,"status":200,"path":"/api/v1/orders/%d"}`, svc, i)}
		if i%9 == 4 {
			l.Text = fmt.Sprintf(`{"level":"WARN","msg":"upstream slow","upstream":"payments","ms":%d}`, 200+i)
		}
		if i%13 == 7 {
			l.Stream, l.Text = "stderr", "panic-free error: payment declined for order "+fmt.Sprint(i)
			l.Level = "error"
		}
		lines = append(lines, l)
	}
	return lines
}

// fakeSource serves fixed answers; err makes every call fail.
type fakeSource struct {
	mu        sync.Mutex
	snap      state.Snapshot
	spans     map[string][]state.Span
	err       error
	restarted []string
	logs      []state.LogLine
	faults    []state.FaultRequest // what AddFault was asked
	clears    int
	watches   []bool // what SetWatch was asked
	metrics   state.Metrics
}

var _ Source = (*fakeSource)(nil)

func (f *fakeSource) Snapshot(context.Context) (state.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap, f.err
}

func (f *fakeSource) Trace(_ context.Context, id string) ([]state.Span, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	spans, ok := f.spans[id]
	if !ok {
		return nil, errors.New("trace not found")
	}
	return spans, nil
}

func (f *fakeSource) FollowLogs(_ context.Context, _ time.Duration, fn func(state.LogLine) error) error {
	f.mu.Lock()
	lines, err := f.logs, f.err
	f.mu.Unlock()
	if err != nil {
		return err
	}
	for _, l := range lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSource) Restart(_ context.Context, svc string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.restarted = append(f.restarted, svc)
	return nil
}

func (f *fakeSource) AddFault(_ context.Context, req state.FaultRequest) (state.Fault, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return state.Fault{}, f.err
	}
	f.faults = append(f.faults, req)
	return state.Fault{ID: strconv.Itoa(len(f.faults)), FaultSpec: req.FaultSpec}, nil
}

func (f *fakeSource) Metrics(context.Context, string) (state.Metrics, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.metrics, f.err
}

// fixtureMetrics is the shop under load: the gateway's route and its edge
// to orders, failing more and more slowly over the last minute; a consumer
// that fell behind.
func fixtureMetrics() state.Metrics {
	ramp := func(from, step float64) []float64 {
		v := make([]float64, 150)
		for i := range v {
			v[i] = from + step*float64(i%40)
		}
		v[140], v[141] = 0, 0 // nothing measured for 4 s
		return v
	}
	lag := int64(42)
	lags := make([]int64, 150)
	for i := range lags {
		lags[i] = int64(i) / 3
	}
	lags[149] = lag
	return state.Metrics{
		TakenAt: now, StepMS: 2000, WindowMS: 10000,
		Rows: []state.MetricRow{
			{Service: "gateway", Kind: state.MetricRoute, Name: "POST /api/v1/orders", Requests: 240, RPS: 24, ErrorPct: 7.5, P50MS: 18.2, P99MS: 412,
				Total: 15321, TotalErrors: 210, RPSSeries: ramp(10, 0.5), P99Series: ramp(40, 10)},
			{Service: "gateway", Kind: state.MetricRoute, Name: "GET /api/v1/products", Requests: 50, RPS: 5, P50MS: 1.2, P99MS: 4.9,
				Total: 3020, RPSSeries: ramp(5, 0), P99Series: ramp(4.9, 0)},
			{Service: "gateway", Kind: state.MetricEdge, Name: "orders", Requests: 240, RPS: 24, ErrorPct: 2.5, P50MS: 15.1, P99MS: 398,
				Total: 15300, TotalErrors: 190, RPSSeries: ramp(10, 0.5), P99Series: ramp(30, 9)},
			{Service: "payments", Kind: state.MetricConsumer, Name: "payments-orders", Subject: "orders.evt.created", Requests: 20, RPS: 2, P50MS: 3.3, P99MS: 9.7,
				Total: 1500, RPSSeries: ramp(2, 0), P99Series: ramp(9.7, 0), Lag: &lag, LagSeries: lags},
		},
	}
}

func (f *fakeSource) ClearFaults(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.clears++
	n := len(f.faults)
	f.faults = nil
	return n, nil
}

func (f *fakeSource) SetWatch(_ context.Context, on bool) (state.WatchStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return state.WatchStatus{}, f.err
	}
	f.watches = append(f.watches, on)
	return state.WatchStatus{On: on}, nil
}
