package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/contractsrun"
)

// These tests drive `msctl contracts verify` through the whole command line
// (flags, exit codes, output, stored results) with the driver replaced by a
// fake that returns recorded results: internal/contractsrun proves the real
// run against this repository's contract suite.

// Two of the suite's pacts, as the consumer phase writes them.
var recordedPacts = map[string]string{
	"gateway-users.json": `{"consumer":{"name":"gateway"},"provider":{"name":"users"},"interactions":[
		{"type":"Synchronous/HTTP","description":"a request for a customer's profile","providerStates":[{"name":"a customer exists"}]},
		{"type":"Synchronous/HTTP","description":"a login request","providerStates":[{"name":"alice exists"}]}]}`,
	"inventory-orders.json": `{"consumer":{"name":"inventory"},"provider":{"name":"orders"},"interactions":[
		{"type":"Asynchronous/Messages","description":"a command to reserve stock"}]}`,
}

// recordedReport is what contractsrun.Run reports for recordedPacts: all
// green, or with users answering "full_name" where gateway expects "name".
func recordedReport(renamed bool) *contractsrun.Report {
	rep := &contractsrun.Report{
		OK:       true,
		Duration: "41.2s",
		ConsumerTests: []contractsrun.TestResult{
			{Name: "TestConsumerGatewayUsers", Consumer: "gateway", Passed: true},
			{Name: "TestConsumerInventoryOrders", Consumer: "inventory", Passed: true},
		},
		Pairs: []contractsrun.Pair{
			{Consumer: "gateway", Provider: "users", Kind: "http", Interactions: 2, Verified: 2, Status: contractsrun.StatusPassed},
			{Consumer: "inventory", Provider: "orders", Kind: "message", Interactions: 1, Verified: 1, Status: contractsrun.StatusPassed},
		},
	}
	if renamed {
		rep.OK = false
		rep.Pairs[0].Verified, rep.Pairs[0].Failed, rep.Pairs[0].Status = 1, 1, contractsrun.StatusFailed
		rep.Failures = []contractsrun.Failure{{
			Stage: contractsrun.StageProvider, Consumer: "gateway", Provider: "users",
			Interaction: "a request for a customer's profile", Test: "TestProviderUsers",
			Message: "1.1) has a matching body; $ -> Actual map is missing the following keys: name",
		}}
	}
	return rep
}

// fakeDriver stands in for contractsrun.Run and records how it was called.
type fakeDriver struct {
	rep   *contractsrun.Report
	err   error
	calls int
	got   contractsrun.Options
}

func (f *fakeDriver) run(_ context.Context, opts contractsrun.Options) (*contractsrun.Report, error) {
	f.calls++
	f.got = opts
	if f.err != nil {
		return nil, f.err
	}
	rep := *f.rep
	rep.PactDir = filepath.Join(opts.ModuleDir, contractsrun.PactDirName)
	return &rep, nil
}

// withDriver builds msctl's real command tree with the contracts command's
// seams replaced: the Pact library lookup answers libErr, runs go to f.
func withDriver(f *fakeDriver, libErr error) func(*rootOptions) *cobra.Command {
	return func(opts *rootOptions) *cobra.Command {
		root := newRootCmd(opts)
		for _, c := range root.Commands() {
			if c.Name() == "contracts" {
				root.RemoveCommand(c)
			}
		}
		root.AddCommand(contractsCmd(&contractsOptions{
			root:    opts,
			findLib: func() (string, error) { return "/usr/local/lib/libpact_ffi.so", libErr },
			run:     f.run,
		}))
		return root
	}
}

// contractsWorkspace is a workspace with a contracts/ directory holding the
// recorded pacts.
func contractsWorkspace(t *testing.T, manifest string) string {
	t.Helper()
	dir := t.TempDir()
	pacts := filepath.Join(dir, contractsrun.PactDirName)
	if err := os.MkdirAll(pacts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range recordedPacts {
		if err := os.WriteFile(filepath.Join(pacts, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "msctl.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// junitTotals reads the totals off a JUnit file.
func junitTotals(t *testing.T, path string) (tests, failures int, raw string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("junit: %v", err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("junit is not XML: %v\n%s", err, b)
	}
	return suites.Tests, suites.Failures, string(b)
}

func TestContractsVerifyCommand(t *testing.T) {
	const failureLine = `FAIL gateway → users: "a request for a customer's profile": 1.1) has a matching body; $ -> Actual map is missing the following keys: name`
	// followUp is a later command in the same workspace and what it must answer.
	type followUp struct {
		args   []string
		code   int
		stdout string
	}
	tests := []struct {
		name       string
		manifest   string // default "project: shop"
		args       []string
		driver     fakeDriver
		libErr     error
		wantCode   int
		wantRun    bool
		wantStdout []string
		wantStderr []string
		check      func(t *testing.T, dir string, stdout []byte, d *fakeDriver)
		then       []followUp
	}{
		{
			name:     "green run prints the matrix and stores the results",
			driver:   fakeDriver{rep: recordedReport(false)},
			wantCode: exitOK, wantRun: true,
			wantStdout: []string{
				"CONSUMER \\ PROVIDER  orders", "gateway", "http 2 ok", "message 1 ok",
				"\n2 pacts, 3 interactions, 3 verified, 0 failures (41.2s)\n",
			},
			check: func(t *testing.T, _ string, _ []byte, d *fakeDriver) {
				if d.got.Consumer != "" || d.got.Provider != "" {
					t.Errorf("filters without flags: %+v", d.got)
				}
			},
			then: []followUp{
				{args: []string{"contracts", "can-i-deploy", "users"}, code: exitOK, stdout: "gateway → users: 2 http interactions verified"},
				{args: []string{"contracts", "can-i-deploy", "orders"}, code: exitOK, stdout: "inventory → orders: 1 message interactions verified"},
			},
		},
		{
			name:     "green run as JSON and JUnit",
			args:     []string{"--json", "--junit", "JUNIT"},
			driver:   fakeDriver{rep: recordedReport(false)},
			wantCode: exitOK, wantRun: true,
			check: func(t *testing.T, dir string, stdout []byte, _ *fakeDriver) {
				var rep contractsrun.Report
				if err := json.Unmarshal(stdout, &rep); err != nil {
					t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
				}
				if !rep.OK || len(rep.Pairs) != 2 || rep.PactDir != filepath.Join(dir, contractsrun.PactDirName) {
					t.Errorf("report %+v", rep)
				}
				// Two consumer tests and three interactions, none failed.
				if tests, failures, raw := junitTotals(t, filepath.Join(dir, "junit.xml")); tests != 5 || failures != 0 {
					t.Errorf("junit has %d tests, %d failures:\n%s", tests, failures, raw)
				}
			},
		},
		{
			name:     "a renamed field fails naming the interaction and the mismatch",
			args:     []string{"--junit", "JUNIT"},
			driver:   fakeDriver{rep: recordedReport(true)},
			wantCode: exitFailure, wantRun: true,
			wantStdout: []string{"http 1/2 FAIL", "message 1 ok", "3 interactions, 2 verified, 1 failures", failureLine},
			wantStderr: []string{"msctl: contract verification failed: 1 failures\n"},
			check: func(t *testing.T, dir string, _ []byte, _ *fakeDriver) {
				tests, failures, raw := junitTotals(t, filepath.Join(dir, "junit.xml"))
				if tests != 5 || failures != 1 || !strings.Contains(raw, "missing the following keys: name") {
					t.Errorf("junit has %d tests, %d failures:\n%s", tests, failures, raw)
				}
			},
			then: []followUp{
				{args: []string{"contracts", "can-i-deploy", "users"}, code: exitFailure,
					stdout: `gateway → users: 1 of 2 interactions fail: "a request for a customer's profile" (1.1) has a matching body; $ -> Actual map is missing the following keys: name)`},
				{args: []string{"contracts", "can-i-deploy", "gateway"}, code: exitFailure, stdout: "no (results of"},
				{args: []string{"contracts", "can-i-deploy", "orders"}, code: exitOK, stdout: "yes (results of"},
			},
		},
		{
			name:     "filters and progress reach the driver",
			args:     []string{"--consumer", "gateway", "--provider", "users"},
			driver:   fakeDriver{rep: recordedReport(false)},
			wantCode: exitOK, wantRun: true,
			check: func(t *testing.T, dir string, _ []byte, d *fakeDriver) {
				if d.got.ModuleDir != dir || d.got.Consumer != "gateway" || d.got.Provider != "users" || d.got.Progress == nil {
					t.Errorf("driver options %+v, want module %s, consumer gateway, provider users, progress on stderr", d.got, dir)
				}
			},
		},
		{
			name:       "a run that cannot happen is exit 1 with the reason",
			driver:     fakeDriver{err: errors.New("go test of the consumers failed before any test ran: undefined: bus")},
			wantCode:   exitFailure,
			wantRun:    true,
			wantStderr: []string{"msctl: contracts verify: go test of the consumers failed before any test ran: undefined: bus\n"},
			check: func(t *testing.T, dir string, _ []byte, _ *fakeDriver) {
				if _, err := contractsrun.Load(dir); !errors.Is(err, contractsrun.ErrNoResults) {
					t.Errorf("a failed run stored results: %v", err)
				}
			},
		},
		{
			name:       "without the Pact library nothing runs",
			libErr:     errors.New("libpact_ffi.so not found"),
			wantCode:   exitFailure,
			wantStderr: []string{"libpact_ffi.so not found", "make pact"},
		},
		{
			name:       "an invalid manifest is a usage error before anything runs",
			manifest:   "project: shop\nsurprise: 1\n",
			wantCode:   exitUsage,
			wantStderr: []string{"surprise"},
		},
		{
			name:       "an unknown flag is a usage error",
			args:       []string{"--bogus"},
			wantCode:   exitUsage,
			wantStderr: []string{"unknown flag: --bogus"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			manifest := tt.manifest
			if manifest == "" {
				manifest = "project: shop\n"
			}
			dir := contractsWorkspace(t, manifest)
			file := filepath.Join(dir, "msctl.yaml")
			args := []string{"--file", file, "contracts", "verify"}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "JUNIT", filepath.Join(dir, "junit.xml")))
			}
			d := tt.driver
			build := withDriver(&d, tt.libErr)
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr, build)
			if code != tt.wantCode || (d.calls == 1) != tt.wantRun || d.calls > 1 {
				t.Fatalf("exit %d, driver called %d times; want exit %d, called %v\nstdout:\n%s\nstderr:\n%s",
					code, d.calls, tt.wantCode, tt.wantRun, stdout.String(), stderr.String())
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if tt.check != nil {
				tt.check(t, dir, stdout.Bytes(), &d)
			}
			for _, f := range tt.then {
				stdout.Reset()
				stderr.Reset()
				code := run(append([]string{"--file", file}, f.args...), &stdout, &stderr, build)
				if code != f.code || !strings.Contains(stdout.String(), f.stdout) {
					t.Errorf("%s: exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s",
						strings.Join(f.args, " "), code, f.code, f.stdout, stdout.String(), stderr.String())
				}
			}
		})
	}
}
