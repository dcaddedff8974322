package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// fakeRuntime records what the orchestrator asks of it. Instances are
// ready once their service's readyAfter has passed, and crash on demand.
type fakeRuntime struct {
	mu         sync.Mutex
	log        []string // "start users", "stop users", …
	insts      map[string][]*fakeInst
	failStart  map[string]error
	crashStart map[string]bool // instances exit right after start
	nextPort   int
	infra      fakeInfra
	// stopGate, when set, runs as an instance's Stop begins (with its
	// endpoint), to hold a stop half way.
	stopGate func(endpoint string)
}

var _ runtime.Runtime = (*fakeRuntime)(nil)

func newFake() *fakeRuntime {
	return &fakeRuntime{insts: map[string][]*fakeInst{}, failStart: map[string]error{}, crashStart: map[string]bool{}, nextPort: 1000}
}

func (f *fakeRuntime) record(s string) {
	f.mu.Lock()
	f.log = append(f.log, s)
	f.mu.Unlock()
}

func (f *fakeRuntime) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (f *fakeRuntime) Name() string { return "fake" }
func (f *fakeRuntime) StartInfra(ctx context.Context, spec runtime.InfraSpec) (runtime.Infra, error) {
	f.record("infra up")
	return f.infra.start("http://" + spec.OTLPHostAddr), nil
}
func (f *fakeRuntime) EnsureDatabase(ctx context.Context, svc string) (string, error) {
	return "postgres://" + svc + "@pg/" + svc, nil
}
func (f *fakeRuntime) Build(ctx context.Context, specs []runtime.BuildSpec, progress func(runtime.BuildEvent)) error {
	for _, s := range specs {
		progress(runtime.BuildEvent{Service: s.Name, Done: true})
	}
	return nil
}
func (f *fakeRuntime) StopInfra(ctx context.Context, grace time.Duration) error {
	f.record("infra down")
	f.infra.stop()
	return nil
}
func (f *fakeRuntime) Cleanup(ctx context.Context, volumes bool) error { return nil }

func (f *fakeRuntime) Start(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failStart[spec.Service]; err != nil {
		return nil, err
	}
	f.nextPort++
	in := &fakeInst{
		info: runtime.InstanceInfo{ID: spec.Instance, Endpoint: fmt.Sprintf("127.0.0.1:%d", f.nextPort), StartedAt: time.Now()},
		spec: spec, done: make(chan struct{}), f: f,
	}
	f.insts[spec.Service] = append(f.insts[spec.Service], in)
	f.log = append(f.log, "start "+spec.Service)
	spec.Output("stdout", "hello from "+spec.Service)
	if f.crashStart[spec.Service] {
		in.exit(1)
	}
	return in, nil
}

// current returns the latest instance of svc.
func (f *fakeRuntime) current(svc string) *fakeInst {
	f.mu.Lock()
	defer f.mu.Unlock()
	is := f.insts[svc]
	if len(is) == 0 {
		return nil
	}
	return is[len(is)-1]
}

func (f *fakeRuntime) byEndpoint(ep string) *fakeInst {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, is := range f.insts {
		for _, in := range is {
			if in.info.Endpoint == ep {
				return in
			}
		}
	}
	return nil
}

type fakeInst struct {
	info runtime.InstanceInfo
	spec runtime.Spec
	f    *fakeRuntime
	once sync.Once
	done chan struct{}
	code int
}

func (i *fakeInst) Info() runtime.InstanceInfo { return i.info }
func (i *fakeInst) Done() <-chan struct{}      { return i.done }
func (i *fakeInst) Exit() runtime.Exit         { return runtime.Exit{Code: i.code} }
func (i *fakeInst) exit(code int) {
	i.once.Do(func() { i.code = code; close(i.done) })
}
func (i *fakeInst) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-i.done:
		return nil
	default:
	}
	i.f.record("stop " + i.spec.Service)
	i.f.mu.Lock()
	gate := i.f.stopGate
	i.f.mu.Unlock()
	if gate != nil {
		gate(i.info.Endpoint)
	}
	i.exit(0)
	return nil
}

func (f *fakeRuntime) probe(ctx context.Context, ep, path string) error {
	in := f.byEndpoint(ep)
	if in == nil {
		return errors.New("connection refused")
	}
	select {
	case <-in.done:
		return errors.New("connection refused")
	default:
		return nil
	}
}

const shopYAML = `project: shop
gateway:
  port: 18080
services:
  users:
    database: true
    routes:
      /api/v1/auth: public
  inventory:
    database: true
  orders:
    depends_on: [inventory, users]
  gateway:
    public: true
    depends_on: [orders, users]
`

func loadShop(t *testing.T) *manifest.Manifest {
	t.Helper()
	dir := t.TempDir()
	for _, s := range []string{"users", "inventory", "orders", "gateway"} {
		if err := os.MkdirAll(filepath.Join(dir, "services", s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return testenv.Manifest(t, dir, shopYAML)
}

// upShop brings the shop up on a fake runtime.
func upShop(t *testing.T) (*fakeRuntime, *Orchestrator) {
	t.Helper()
	f := newFake()
	o := newOrch(t, f)
	if err := o.Up(t.Context(), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	return f, o
}

func newOrch(t *testing.T, f *fakeRuntime) *Orchestrator {
	t.Helper()
	return newOrchWith(t, f, nil)
}

func newOrchWith(t *testing.T, f *fakeRuntime, r Router) *Orchestrator {
	t.Helper()
	return newOrchFor(t, f, loadShop(t), r)
}

func newOrchFor(t *testing.T, f *fakeRuntime, m *manifest.Manifest, r Router) *Orchestrator {
	t.Helper()
	o, err := New(Options{
		Manifest: m, Runtime: f, OTLPAddr: "127.0.0.1:4318", Probe: f.probe,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, ReadyTimeout: 5 * time.Second, Grace: time.Second,
		Router: r,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Down(context.Background(), DownOptions{}) })
	return o
}

// inOrder reports each pair of events that evs lacks or holds the other
// way round.
func inOrder(t *testing.T, evs []string, pairs [][2]string) {
	t.Helper()
	for _, b := range pairs {
		if i, j := slices.Index(evs, b[0]), slices.Index(evs, b[1]); i < 0 || j < 0 || i > j {
			t.Errorf("want %q before %q, got %v", b[0], b[1], evs)
		}
	}
}

func TestUpStartsInDependencyOrderAndDownReverses(t *testing.T) {
	f, o := upShop(t)
	for _, c := range o.Ps() {
		if c.State != state.StateHealthy {
			t.Errorf("%s is %s (%s), want healthy", c.Name, c.State, c.Health)
		}
	}
	inOrder(t, f.events(), [][2]string{
		{"infra up", "start users"}, {"start users", "start orders"}, {"start inventory", "start orders"},
		{"start orders", "start gateway"},
	})
	if err := o.Down(t.Context(), DownOptions{}); err != nil {
		t.Fatal(err)
	}
	inOrder(t, f.events(), [][2]string{
		{"stop gateway", "stop orders"}, {"stop orders", "stop users"}, {"stop orders", "stop inventory"},
		{"stop users", "infra down"},
	})
	for _, c := range o.Ps() {
		if c.State != state.StateStopped {
			t.Errorf("%s is %s after down", c.Name, c.State)
		}
	}
}

// envWant is a variable the spec of a service's current instance holds.
type envWant struct{ svc, key, want string }

func checkEnv(t *testing.T, f *fakeRuntime, wants []envWant) {
	t.Helper()
	for _, w := range wants {
		if got := f.current(w.svc).spec.Env[w.key]; got != w.want {
			t.Errorf("%s %s = %q, want %q", w.svc, w.key, got, w.want)
		}
	}
}

func TestUpEnvironment(t *testing.T) {
	f, _ := upShop(t)
	checkEnv(t, f, []envWant{
		{"users", "SERVICE_NAME", "users"},
		{"users", "DATABASE_URL", "postgres://users@pg/users"},
		{"users", "NATS_URL", "nats://nats:4222"},
		{"users", "ETCD_ENDPOINTS", "http://etcd:2379"},
		{"users", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"},
		{"orders", "DATABASE_URL", ""},
		{"gateway", "GATEWAY_ROUTES", "/api/v1/auth=users:public"},
	})
	if got := f.current("gateway").spec.HostPort; got != 18080 {
		t.Errorf("gateway host port = %d, want 18080", got)
	}
	if !strings.HasPrefix(f.current("users").spec.Env["INSTANCE_ID"], "users-1-") {
		t.Errorf("INSTANCE_ID = %q", f.current("users").spec.Env["INSTANCE_ID"])
	}
}

func TestUpSubsetStartsDependencies(t *testing.T) {
	f := newFake()
	o := newOrch(t, f)
	if err := o.Up(t.Context(), UpOptions{Services: []string{"orders"}}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range o.Ps() {
		if c.Kind == state.KindService {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	if want := []string{"inventory", "orders", "users"}; !slices.Equal(names, want) {
		t.Errorf("services = %v, want %v", names, want)
	}
	if err := o.Up(t.Context(), UpOptions{Services: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Errorf("unknown service: err = %v", err)
	}
}

func TestCrashedInstanceIsRestartedAndCounted(t *testing.T) {
	f, o := upShop(t)
	first := f.current("orders")
	first.exit(137)
	err := o.waitFor(t.Context(), func() bool {
		c := o.comps["orders"]
		return c.insts[0].gen == 2 && c.state == state.StateHealthy
	})
	if err != nil {
		t.Fatalf("orders not restarted: %v; ps %+v", err, o.Ps())
	}
	for _, c := range o.Ps() {
		if c.Name == "orders" && c.Restarts != 1 {
			t.Errorf("orders restarts = %d, want 1", c.Restarts)
		}
	}
}

func TestUpFailsOnCrashLoopWithOutput(t *testing.T) {
	f := newFake()
	f.crashStart["inventory"] = true
	o := newOrch(t, f)
	err := o.Up(t.Context(), UpOptions{})
	if err == nil {
		t.Fatal("up succeeded with a crashing service")
	}
	for _, want := range []string{"start inventory", "before becoming ready", "hello from inventory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if slices.Contains(f.events(), "start gateway") {
		t.Error("gateway started although a dependency never became ready")
	}
}

func TestUpFailsOnTakenGatewayPort(t *testing.T) {
	f := newFake()
	f.failStart["gateway"] = &runtime.PortInUseError{Port: 18080, Holder: "pid 1 (nginx)"}
	o := newOrch(t, f)
	err := o.Up(t.Context(), UpOptions{})
	var pe *runtime.PortInUseError
	if !errors.As(err, &pe) || pe.Port != 18080 {
		t.Fatalf("err = %v, want a PortInUseError for 18080", err)
	}
}

func TestRestartReplacesInstance(t *testing.T) {
	f, o := upShop(t)
	old := f.current("users")
	if err := o.Restart(t.Context(), "users"); err != nil {
		t.Fatal(err)
	}
	if cur := f.current("users"); cur == old {
		t.Fatal("restart kept the old instance")
	}
	for _, c := range o.Ps() {
		if c.Name == "users" && c.State != state.StateHealthy {
			t.Errorf("users is %s after restart", c.State)
		}
	}
	if err := o.Restart(t.Context(), "nope"); err == nil {
		t.Error("restart of an unknown service succeeded")
	}
}

func TestLogsFilterAndFollow(t *testing.T) {
	f, o := upShop(t)
	var got []string
	for l := range o.Logs(t.Context(), state.LogQuery{Services: []string{"users", "orders"}}) {
		got = append(got, l.Service)
	}
	slices.Sort(got)
	if want := []string{"orders", "users"}; !slices.Equal(got, want) {
		t.Errorf("logs from %v, want %v", got, want)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ch := o.Logs(ctx, state.LogQuery{Services: []string{"users"}, Follow: true})
	<-ch // the backlog line
	f.current("users").spec.Output("stderr", `{"level":"WARN","msg":"later"}`)
	select {
	case l := <-ch:
		if l.Level != "warn" || l.Stream != "stderr" {
			t.Errorf("followed line = %+v", l)
		}
	case <-ctx.Done():
		t.Fatal("no followed line")
	}
}

func TestLogbookIsBounded(t *testing.T) {
	b := newLogbook(3)
	for i := range 10 {
		b.add(state.LogLine{Time: time.Unix(int64(i), 0), Service: "a", Text: fmt.Sprint(i)})
	}
	var got []string
	for _, l := range b.query(state.LogQuery{}) {
		got = append(got, l.Text)
	}
	if want := []string{"7", "8", "9"}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
}
