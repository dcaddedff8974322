package contractsrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
)

// A workspace whose contract tests follow the suite's protocol without Pact:
// consumers write pact files to CONTRACTS_PACT_DIR, the provider reports one
// subtest per interaction, printing a mismatch as the verifier does. It makes
// the whole of Run (build, both phases, filters, cleaning) quick to test.
const fakeSuite = `//go:build contracts

package contracts

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func writePact(t *testing.T, consumer, interactions string) {
	if os.Getenv("CONTRACTS_PHASE") != "consumers" {
		t.Fatal("consumer test outside the consumer phase")
	}
	f := filepath.Join(os.Getenv("CONTRACTS_PACT_DIR"), consumer+"-users.json")
	pact := fmt.Sprintf("{\"consumer\":{\"name\":%q},\"provider\":{\"name\":\"users\"},\"interactions\":[%s]}", consumer, interactions)
	if err := os.WriteFile(f, []byte(pact), 0o644); err != nil {
		t.Fatal(err)
	}
}

func interaction(description string) string {
	return fmt.Sprintf("{\"type\":\"Synchronous/HTTP\",\"description\":%q}", description)
}

func TestConsumerShopUsers(t *testing.T) {
	writePact(t, "shop", interaction("a login")+","+interaction("a signup"))
}

func TestConsumerBillingUsers(t *testing.T) {
	writePact(t, "billing", interaction("an invoice address"))
}

func TestProviderUsers(t *testing.T) {
	if os.Getenv("CONTRACTS_PHASE") != "providers" {
		t.Fatal("provider test outside the provider phase")
	}
	t.Run("shop/a_login", func(t *testing.T) {})
	t.Run("shop/a_signup", func(t *testing.T) {
		fmt.Println("    1.1) has a matching body")
		fmt.Println("           $ -> Actual map is missing the following keys: name")
		t.Fail()
	})
	t.Run("billing/an_invoice_address", func(t *testing.T) {})
}
`

// fakeWorkspace writes a module holding contracts (the files of contracts/,
// by name) and a stale pact left by an earlier run.
func fakeWorkspace(t *testing.T, contracts map[string]string) (dir, stale string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{"go.mod": "module example.com/shop\n\ngo 1.26\n", "contracts/pacts/ghost-users.json": `{"consumer":{"name":"ghost"},"provider":{"name":"users"},"interactions":[]}`}
	for name, body := range contracts {
		files["contracts/"+name] = body
	}
	testenv.WriteFiles(t, dir, files)
	return dir, filepath.Join(dir, "contracts/pacts/ghost-users.json")
}

func TestRun(t *testing.T) {
	const signupFails = `shop → users: "a signup": 1.1) has a matching body; $ -> Actual map is missing the following keys: name`
	tests := []struct {
		name      string
		consumer  string
		wantTests []string
		wantPairs []Pair
		wantFails []string
	}{
		{
			name:      "every consumer",
			wantTests: []string{"TestConsumerShopUsers", "TestConsumerBillingUsers"},
			wantPairs: []Pair{
				{Consumer: "billing", Provider: "users", Kind: "http", Interactions: 1, Verified: 1, Status: StatusPassed},
				{Consumer: "shop", Provider: "users", Kind: "http", Interactions: 2, Verified: 1, Failed: 1, Status: StatusFailed},
			},
			wantFails: []string{signupFails},
		},
		{
			name:      "one consumer",
			consumer:  "billing",
			wantTests: []string{"TestConsumerBillingUsers"},
			wantPairs: []Pair{{Consumer: "billing", Provider: "users", Kind: "http", Interactions: 1, Verified: 1, Status: StatusPassed}},
		},
		{
			name:      "a consumer without tests",
			consumer:  "nobody",
			wantFails: []string{"no consumer tests matched of nobody"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, stale := fakeWorkspace(t, map[string]string{"contracts_test.go": fakeSuite})
			var progress strings.Builder
			rep, err := Run(context.Background(), Options{ModuleDir: dir, Consumer: tt.consumer, Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(stale); !os.IsNotExist(err) {
				t.Errorf("the stale pact survived the run: %v", err)
			}
			var tests, fails []string
			for _, r := range rep.ConsumerTests {
				tests = append(tests, r.Name)
			}
			for _, f := range rep.Failures {
				fails = append(fails, f.String())
			}
			if !slices.Equal(tests, tt.wantTests) || !slices.Equal(rep.Pairs, tt.wantPairs) || !slices.Equal(fails, tt.wantFails) {
				t.Errorf("consumer tests %v, pairs %+v, failures %q;\nwant %v, %+v, %q", tests, rep.Pairs, fails, tt.wantTests, tt.wantPairs, tt.wantFails)
			}
			if rep.OK != (len(tt.wantFails) == 0) || rep.Consumer != tt.consumer {
				t.Errorf("report OK %v, consumer %q", rep.OK, rep.Consumer)
			}
			if !strings.HasPrefix(progress.String(), "contracts: building the contract tests\ncontracts: running consumer tests") {
				t.Errorf("progress:\n%s", progress.String())
			}
		})
	}
}

func TestRunBuildFailure(t *testing.T) {
	dir, _ := fakeWorkspace(t, map[string]string{"contracts_test.go": "//go:build contracts\n\npackage contracts\n\nvar broken = undefinedThing\n"})
	_, err := Run(context.Background(), Options{ModuleDir: dir})
	if err == nil || !strings.Contains(err.Error(), "build the contract tests") || !strings.Contains(err.Error(), "undefined: undefinedThing") {
		t.Errorf("Run of a suite that does not compile: %v", err)
	}
	if _, err := Run(context.Background(), Options{ModuleDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no contract tests in") {
		t.Errorf("Run without contracts/: %v", err)
	}
}

// A consumer test that hangs until killed, after saying who it is.
const hangingSuite = `//go:build contracts

package contracts

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestConsumerShopUsers(t *testing.T) {
	pid := filepath.Join(os.Getenv("CONTRACTS_PACT_DIR"), "..", "test.pid")
	if err := os.WriteFile(pid, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Minute)
}
`

// TestRunCancel: cancelling Run's context (Ctrl-C in msctl) stops the test
// binary itself, not only the process Run started.
func TestRunCancel(t *testing.T) {
	dir, _ := fakeWorkspace(t, map[string]string{"contracts_test.go": hangingSuite})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pidFile := filepath.Join(dir, "contracts", "test.pid")
	pid := make(chan int, 1)
	go func() {
		defer cancel()
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if raw, err := os.ReadFile(pidFile); err == nil {
				if n, err := strconv.Atoi(string(raw)); err == nil {
					pid <- n
					return
				}
			}
		}
		pid <- 0
	}()
	if _, err := Run(ctx, Options{ModuleDir: dir}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	p := <-pid
	if p == 0 {
		t.Fatal("the consumer test never started")
	}
	for deadline := time.Now().Add(30 * time.Second); alive(p); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("test binary %d still runs after the cancelled Run returned", p)
		}
	}
}

// alive says whether pid is a process that has not exited (a zombie has).
func alive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
