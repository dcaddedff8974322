package contractsrun

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/testenv"
)

// These tests run the real contract suite in contracts/ through the driver,
// so they need the Pact library (and, in the suite, host Postgres).

func moduleDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// wantPairs is every dependency of the bundled system that a contract covers.
var wantPairs = []string{
	"gateway→users http", "gateway→inventory http", "gateway→orders http", "gateway→payments http",
	"gateway→notifications http",
	"inventory→orders message", "payments→orders message", "notifications→orders message",
	"orders→inventory message", "orders→payments message",
}

func TestRunVerifiesEveryPair(t *testing.T) {
	testenv.RequirePact(t)
	rep, err := Run(context.Background(), Options{ModuleDir: moduleDir(t)})
	if err != nil {
		t.Fatal(err)
	}
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

func TestRunCatchesRenamedField(t *testing.T) {
	testenv.RequirePact(t)
	rep, err := Run(context.Background(), Options{
		ModuleDir: moduleDir(t),
		Provider:  "users",
		Env:       []string{"CONTRACTS_RENAME_FIELD=users:name=full_name"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Fatal("verification passed although users renamed name to full_name")
	}
	var found bool
	for _, f := range rep.Failures {
		if f.Provider == "users" && f.Interaction == "a request for a customer's profile" {
			found = true
			if !strings.Contains(f.Message, "name") {
				t.Errorf("failure does not name the field: %s", f)
			}
		}
	}
	if !found {
		t.Errorf("no failure names the profile interaction: %+v", rep.Failures)
	}
}

// providerRun runs only TestProviderUsers against the pacts in dir.
func providerRun(t *testing.T, dir string) *testResult {
	t.Helper()
	run, err := goTest(context.Background(), Options{ModuleDir: moduleDir(t)}, dir, "providers", "^TestProviderUsers$")
	if err != nil {
		t.Fatal(err)
	}
	r, ok := run.tests["TestProviderUsers"]
	if !ok {
		t.Fatalf("TestProviderUsers did not run: %s", strings.Join(run.pkg, ""))
	}
	return r
}

func TestProviderFailsOnUnhandledState(t *testing.T) {
	testenv.RequirePact(t)
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
	r := providerRun(t, dir)
	if r.passed() || !strings.Contains(r.output(), `provider state not handled: "a state nobody handles"`) {
		t.Errorf("want a loud failure naming the state, got %s:\n%s", r.action, r.output())
	}
}

func TestProviderFailsWithoutPacts(t *testing.T) {
	testenv.RequirePact(t)
	r := providerRun(t, t.TempDir())
	if r.passed() || !strings.Contains(r.output(), "no pacts for provider users") {
		t.Errorf("want a failure for an empty pact directory, got %s:\n%s", r.action, r.output())
	}
}
