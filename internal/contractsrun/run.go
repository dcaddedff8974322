// Package contractsrun drives the Pact contract tests in contracts/ for
// `msctl contracts`: it compiles them once (`go test -c -tags contracts`),
// runs the consumer tests (which write the pacts), then the provider
// verifications, reading the test events as `go test -json` reports them, and
// turns the events and pact files into a consumer × provider report.
package contractsrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// PactDirName is where pacts go, relative to the module root.
const PactDirName = "contracts/pacts"

// Environment the contract tests read (see contracts/main_test.go).
const (
	EnvPactDir = "CONTRACTS_PACT_DIR"
	EnvPhase   = "CONTRACTS_PHASE"
)

// Options select what Run verifies.
type Options struct {
	// ModuleDir is the Go module root holding contracts/.
	ModuleDir string
	// Consumer and Provider, when set, restrict the run to one consumer's
	// tests or one provider's verification.
	Consumer, Provider string
	// Env is added to the test processes' environment.
	Env []string
	// Progress receives a line per phase; nil discards.
	Progress io.Writer
}

func (o Options) progress() io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

// Run compiles the contract tests once, executes the consumer phase with a
// fresh pact directory, then verifies every provider that has pacts (or just
// Provider). The error is for runs that could not happen (no Go, a build
// failure); failing contracts are in the report, whose OK is false.
func Run(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	if _, err := os.Stat(filepath.Join(opts.ModuleDir, "contracts")); err != nil {
		return nil, fmt.Errorf("no contract tests in %s: %w", opts.ModuleDir, err)
	}
	fmt.Fprintln(opts.progress(), "contracts: building the contract tests")
	s, err := buildSuite(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.remove()
	return s.verify(ctx, opts, start)
}

// verify is Run after the build: both phases against the module's pact
// directory, which it holds locked and starts empty.
func (s *suite) verify(ctx context.Context, opts Options, start time.Time) (*Report, error) {
	pactDir := filepath.Join(opts.ModuleDir, PactDirName)
	unlock, err := lockDir(pactDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := cleanPacts(pactDir); err != nil {
		return nil, err
	}
	rep := &Report{StartedAt: start.UTC(), Consumer: opts.Consumer, Provider: opts.Provider, PactDir: pactDir}
	if err := s.consumerPhase(ctx, opts, pactDir, rep); err != nil {
		return nil, err
	}
	if err := s.providerPhase(ctx, opts, pactDir, rep); err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start).Round(time.Millisecond).String()
	rep.OK = len(rep.Failures) == 0
	return rep, nil
}

// consumerPhase runs the consumer tests (of opts.Consumer, if set), which
// write their pacts to pactDir, and records them in rep.
func (s *suite) consumerPhase(ctx context.Context, opts Options, pactDir string, rep *Report) error {
	fmt.Fprintf(opts.progress(), "contracts: running consumer tests%s\n", forName(opts.Consumer))
	consumers, err := s.run(ctx, opts, pactDir, "consumers", "^TestConsumer"+exported(opts.Consumer))
	if err != nil {
		return err
	}
	for _, r := range consumers.top("TestConsumer") {
		rep.ConsumerTests = append(rep.ConsumerTests, TestResult{Name: r.name, Consumer: consumerOf(r.name), Passed: r.passed()})
		if !r.passed() {
			rep.Failures = append(rep.Failures, Failure{Stage: StageConsumer, Consumer: consumerOf(r.name), Test: r.name, Message: consumerMismatch(r.output())})
		}
	}
	if len(rep.ConsumerTests) == 0 {
		rep.Failures = append(rep.Failures, Failure{Stage: StageConsumer, Consumer: opts.Consumer, Message: "no consumer tests matched" + forName(opts.Consumer)})
	}
	return nil
}

// providerPhase verifies every provider named by the pacts in pactDir (or
// only opts.Provider) and adds a pair per pact to rep.
func (s *suite) providerPhase(ctx context.Context, opts Options, pactDir string, rep *Report) error {
	pacts, err := LoadPacts(pactDir)
	if err != nil {
		return err
	}
	providers := providersToVerify(pacts, opts.Provider)
	var verified *testRun
	if len(providers) > 0 {
		names := make([]string, len(providers))
		for i, p := range providers {
			names[i] = exported(p)
		}
		fmt.Fprintf(opts.progress(), "contracts: verifying %s\n", strings.Join(providers, ", "))
		verified, err = s.run(ctx, opts, pactDir, "providers", "^TestProvider("+strings.Join(names, "|")+")$")
		if err != nil {
			return err
		}
	} else if opts.Provider != "" {
		rep.Failures = append(rep.Failures, Failure{Stage: StageProvider, Provider: opts.Provider,
			Message: "no pacts name provider " + opts.Provider + " (FailIfNoPactsFound)"})
	}
	for _, p := range pacts {
		rep.Pairs = append(rep.Pairs, pairResult(p, verified, contains(providers, p.Provider), rep))
	}
	return nil
}

func forName(n string) string {
	if n == "" {
		return ""
	}
	return " of " + n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lockDir holds an exclusive lock on the pact directory until unlock: two
// runs in one checkout would otherwise delete and verify each other's pacts.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create pact directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock pact directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock pact directory: %w", err)
	}
	return func() { f.Close() }, nil
}

func cleanPacts(dir string) error {
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return fmt.Errorf("list old pacts: %w", err)
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("remove old pact: %w", err)
		}
	}
	return nil
}

func providersToVerify(pacts []Pact, only string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pacts {
		if (only == "" || p.Provider == only) && !seen[p.Provider] {
			seen[p.Provider] = true
			out = append(out, p.Provider)
		}
	}
	sort.Strings(out)
	return out
}

// pairResult reads one pact's verification out of the provider run; an
// interaction without its own result shares the fate of its provider's test
// (e.g. an unhandled provider state fails the test before any subtest).
func pairResult(p Pact, run *testRun, checked bool, rep *Report) Pair {
	pr := Pair{Consumer: p.Consumer, Provider: p.Provider, Kind: p.Kind(), Interactions: len(p.Interactions)}
	if !checked || run == nil {
		pr.Status = StatusNotVerified
		return pr
	}
	parent := "TestProvider" + exported(p.Provider)
	for _, in := range p.Interactions {
		res, ok := run.tests[parent+"/"+SubtestName(p.Consumer, in.Description)]
		if !ok {
			res, ok = run.tests[parent]
		}
		switch {
		case ok && res.passed():
			pr.Verified++
		default:
			pr.Failed++
			msg := "no verification result"
			if ok {
				msg = providerMismatch(res.output())
			}
			rep.Failures = append(rep.Failures, Failure{Stage: StageProvider, Consumer: p.Consumer, Provider: p.Provider,
				Interaction: in.Description, Test: parent, Message: msg})
		}
	}
	pr.Status = StatusPassed
	if pr.Failed > 0 {
		pr.Status = StatusFailed
	}
	return pr
}

// exported turns a service name into the word the test names use:
// "gateway" → "Gateway", "order-history" → "OrderHistory".
func exported(name string) string {
	var b strings.Builder
	up := true
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// consumerOf reads the consumer from a consumer test's name:
// TestConsumerGatewayUsers → gateway.
func consumerOf(test string) string {
	rest := strings.TrimPrefix(test, "TestConsumer")
	for i, r := range rest {
		if i > 0 && unicode.IsUpper(r) {
			return strings.ToLower(rest[:i])
		}
	}
	return strings.ToLower(rest)
}

// event is one line of `go test -json`.
type event struct {
	Action string
	Test   string
	Output string
}

type testResult struct {
	name   string
	action string
	lines  []string
}

func (r *testResult) passed() bool   { return r.action == "pass" }
func (r *testResult) output() string { return strings.Join(r.lines, "") }

type testRun struct {
	tests map[string]*testResult
	order []string
	pkg   []string // output outside any test: build errors, panics
}

// top returns the top-level tests whose names start with prefix, in run order.
func (r *testRun) top(prefix string) []*testResult {
	var out []*testResult
	for _, n := range r.order {
		if strings.HasPrefix(n, prefix) && !strings.Contains(n, "/") {
			out = append(out, r.tests[n])
		}
	}
	return out
}

func parseEvents(rd io.Reader) (*testRun, error) {
	run := &testRun{tests: map[string]*testResult{}}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			run.pkg = append(run.pkg, string(line)+"\n")
			continue
		}
		if ev.Test == "" {
			if ev.Output != "" {
				run.pkg = append(run.pkg, ev.Output)
			}
			continue
		}
		r, ok := run.tests[ev.Test]
		if !ok {
			r = &testResult{name: ev.Test}
			run.tests[ev.Test] = r
			run.order = append(run.order, ev.Test)
		}
		switch ev.Action {
		case "output":
			r.lines = append(r.lines, ev.Output)
		case "pass", "fail", "skip":
			r.action = ev.Action
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read go test output: %w", err)
	}
	return run, nil
}

// suite is the contract test binary, compiled once per Run: `go test` would
// link it anew for each phase, and linking this cgo binary costs more than
// running the consumer tests.
type suite struct {
	tmp    string // holds bin; removed with the suite
	bin    string
	pkgDir string // where go test would run it: the contracts package
}

// buildSuite compiles the contracts package's tests with `go test -c`.
func buildSuite(ctx context.Context, opts Options) (*suite, error) {
	tmp, err := os.MkdirTemp("", "msctl-contracts-")
	if err != nil {
		return nil, fmt.Errorf("build the contract tests: %w", err)
	}
	s := &suite{tmp: tmp, bin: filepath.Join(tmp, "contracts.test"), pkgDir: filepath.Join(opts.ModuleDir, "contracts")}
	cmd := command(ctx, "go", "test", "-c", "-tags", "contracts", "-o", s.bin, "./contracts")
	cmd.Dir = opts.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	cmd.Env = append(cmd.Env, opts.Env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		s.remove()
		return nil, ctx.Err()
	}
	if err != nil {
		s.remove()
		return nil, fmt.Errorf("build the contract tests: %w\n%s", err, out)
	}
	if _, err := os.Stat(s.bin); err != nil {
		// go test -c writes nothing for a package without test files.
		s.remove()
		return nil, fmt.Errorf("build the contract tests: no test binary (%s): %w", strings.TrimSpace(string(out)), err)
	}
	return s, nil
}

func (s *suite) remove() { os.RemoveAll(s.tmp) }

// command is exec.CommandContext for a process that may start its own
// children (the test binary, its Postgres): they share a new process group,
// and cancelling ctx kills the whole group, not only the direct child.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs the tests matching pattern as `go test -json` would, through
// test2json, in the package directory. Failing tests are not an error; a run
// that produced no test results (a panic in TestMain) is.
func (s *suite) run(ctx context.Context, opts Options, pactDir, phase, pattern string) (*testRun, error) {
	cmd := command(ctx, "go", "tool", "test2json", s.bin, "-test.v=test2json", "-test.paniconexit0",
		"-test.count=1", "-test.timeout=15m", "-test.run", pattern)
	cmd.Dir = s.pkgDir
	cmd.Env = append(os.Environ(), "PACT_DO_NOT_TRACK=true", EnvPactDir+"="+pactDir, EnvPhase+"="+phase)
	cmd.Env = append(cmd.Env, opts.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	run, perr := parseEvents(bytes.NewReader(out))
	if perr != nil {
		return nil, perr
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, fmt.Errorf("run the contract tests: %w", err)
	}
	if err != nil && len(run.tests) == 0 {
		return nil, fmt.Errorf("the %s' contract tests failed before any test ran:\n%s%s", phase, strings.Join(run.pkg, ""), stderr.String())
	}
	return run, nil
}

var (
	ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	// A verifier failure detail: "1.1) has a matching body" or "$ -> Actual map is missing…".
	detail = regexp.MustCompile(`^(\d+\.\d+\) |\$)`)
	// The verifier's summary line of a failed interaction, "1) Verifying a pact … - reason".
	summaryLine = regexp.MustCompile(`^\d+\) Verifying a pact`)
	// A t.Error/t.Fatal line: "file_test.go:123: message".
	testLine = regexp.MustCompile(`^\S+_test\.go:\d+: `)
)

// providerMismatch extracts what the verifier says went wrong.
func providerMismatch(out string) string {
	var details, summaries, logs []string
	for _, l := range strings.Split(ansi.ReplaceAllString(out, ""), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case detail.MatchString(l):
			details = append(details, l)
		case summaryLine.MatchString(l):
			summaries = append(summaries, l)
		case testLine.MatchString(l):
			logs = append(logs, testLine.ReplaceAllString(l, ""))
		}
	}
	switch {
	case len(details) > 0:
		return strings.Join(details, "; ")
	case len(summaries) > 0:
		return strings.Join(summaries, "; ")
	case len(logs) > 0:
		return strings.Join(dedupe(logs), "; ")
	}
	return "verification failed"
}

// consumerMismatch extracts why a consumer test failed.
func consumerMismatch(out string) string {
	var logs []string
	for _, l := range strings.Split(ansi.ReplaceAllString(out, ""), "\n") {
		l = strings.TrimSpace(l)
		if testLine.MatchString(l) {
			logs = append(logs, l)
		}
	}
	if len(logs) == 0 {
		return "consumer test failed"
	}
	return strings.Join(dedupe(logs), "; ")
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
