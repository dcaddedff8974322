package contractsrun

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
)

// These tests run the real contract suite in contracts/ through the driver,
// so they need the Pact library (and, in the suite, host Postgres). Linking
// the suite's test binary costs more than most runs of it, so the package
// builds it once; the pacts of one full run serve every single-provider check.

func TestMain(m *testing.M) {
	code := m.Run()
	if compiled.s != nil {
		compiled.s.remove()
	}
	if full.pacts != "" {
		os.RemoveAll(full.pacts)
	}
	os.Exit(code)
}

func moduleDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var compiled struct {
	once sync.Once
	s    *suite
	err  error
}

// sharedSuite is this repository's contract tests, compiled once per test binary.
func sharedSuite(t testing.TB) *suite {
	t.Helper()
	testenv.RequirePact(t)
	dir := moduleDir(t)
	compiled.once.Do(func() { compiled.s, compiled.err = buildSuite(context.Background(), Options{ModuleDir: dir}) })
	if compiled.err != nil {
		t.Fatal(compiled.err)
	}
	return compiled.s
}

var full struct {
	once  sync.Once
	rep   *Report
	pacts string // a copy: later runs rewrite contracts/pacts
	err   error
}

// fullRun is one verify of the whole suite, done once for every test that
// needs its report or its pacts.
func fullRun(t *testing.T) (*Report, string) {
	t.Helper()
	s := sharedSuite(t)
	dir := moduleDir(t)
	full.once.Do(func() {
		full.rep, full.err = s.verify(context.Background(), Options{ModuleDir: dir}, time.Now())
		if full.err == nil {
			full.pacts, full.err = copyPacts(full.rep.PactDir)
		}
	})
	if full.err != nil {
		t.Fatal(full.err)
	}
	return full.rep, full.pacts
}

func copyPacts(from string) (string, error) {
	to, err := os.MkdirTemp("", "msctl-pacts-")
	if err != nil {
		return "", err
	}
	files, err := filepath.Glob(filepath.Join(from, "*.json"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), raw, 0o644); err != nil {
			return "", err
		}
	}
	return to, nil
}

// wantPairs is every dependency of the bundled system that a contract covers.
var wantPairs = []string{
	"gateway→users http", "gateway→inventory http", "gateway→orders http", "gateway→payments http",
	"gateway→notifications http",
	"inventory→orders message", "payments→orders message", "notifications→orders message",
	"orders→inventory message", "orders→payments message",
}

func TestRunVerifiesEveryPair(t *testing.T) {
	rep, _ := fullRun(t)
	if !rep.OK {
		for _, f := range rep.Failures {
			t.Error(f.String())
		}
	}
	got := map[string]Pair{}
	for _, p := range rep.Pairs {
		got[p.Consumer+"→"+p.Provider+" "+p.Kind] = p
	}
	for _, w := range wantPairs {
		p, ok := got[w]
		switch {
		case !ok:
			t.Errorf("no pact %s; pairs: %+v", w, rep.Pairs)
		case p.Status != StatusPassed || p.Interactions == 0 || p.Verified != p.Interactions:
			t.Errorf("%s: %+v", w, p)
		}
	}
}

// TestProviderCatchesRenamedField verifies one provider, answering with one
// field renamed, against the pacts of the full run: the interactions that
// read the field fail with the verifier's own words, and no other provider
// is verified.
func TestProviderCatchesRenamedField(t *testing.T) {
	_, pacts := fullRun(t)
	s := sharedSuite(t)
	const mismatch = "1.1) has a matching body; "
	tests := []struct {
		name     string
		provider string
		rename   string
		// want is every failure, as Failure.String prints it.
		want []string
	}{
		{
			name:     "http response",
			provider: "users", rename: "users:name=full_name",
			want: []string{
				`gateway → users: "a request for a customer's profile": ` + mismatch + "$ -> Actual map is missing the following keys: name",
				`gateway → users: "a signup request": ` + mismatch + "$ -> Actual map is missing the following keys: name",
			},
		},
		{
			name:     "message",
			provider: "orders", rename: "orders:card=card_number",
			want: []string{
				`payments → orders: "a command to charge a card": ` + mismatch + "$.data -> Actual map is missing the following keys: card",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := &Report{}
			opts := Options{ModuleDir: moduleDir(t), Provider: tt.provider, Env: []string{"CONTRACTS_RENAME_FIELD=" + tt.rename}}
			if err := s.providerPhase(context.Background(), opts, pacts, rep); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range rep.Failures {
				got = append(got, f.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, p := range rep.Pairs {
				if verified := p.Status != StatusNotVerified; verified != (p.Provider == tt.provider) {
					t.Errorf("%s → %s: %s with --provider %s", p.Consumer, p.Provider, p.Status, tt.provider)
				}
			}
		})
	}
}

// TestProviderFailsLoudly: a provider with a pact naming a state it does not
// set up, and one without any pact, both fail saying why, in one run.
func TestProviderFailsLoudly(t *testing.T) {
	s := sharedSuite(t)
	dir := t.TempDir()
	pact := `{"consumer":{"name":"gateway"},"provider":{"name":"users"},"interactions":[{
		"type":"Synchronous/HTTP","description":"a request nobody prepared for",
		"providerStates":[{"name":"a state nobody handles"}],
		"request":{"method":"GET","path":"/.well-known/jwks.json"},
		"response":{"status":200}}],
		"metadata":{"pactSpecification":{"version":"4.0"}}}`
	if err := os.WriteFile(filepath.Join(dir, "gateway-users.json"), []byte(pact), 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := s.run(context.Background(), Options{ModuleDir: moduleDir(t)}, dir, "providers", "^TestProvider(Users|Payments)$")
	if err != nil {
		t.Fatal(err)
	}
	for test, want := range map[string]string{
		"TestProviderUsers":    `provider state not handled: "a state nobody handles"`,
		"TestProviderPayments": "no pacts for provider payments",
	} {
		r, ok := run.tests[test]
		switch {
		case !ok:
			t.Errorf("%s did not run: %s", test, strings.Join(run.pkg, ""))
		case r.passed() || !strings.Contains(r.output(), want):
			t.Errorf("%s: want a failure saying %q, got %s:\n%s", test, want, r.action, r.output())
		}
	}
}
