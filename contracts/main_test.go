//go:build contracts

// Package contracts holds the shop's consumer-driven contract tests (Pact V4).
// Consumer tests (TestConsumer*) drive each consumer's real client or message
// handler against Pact and write the pacts to contracts/pacts; provider tests
// (TestProvider*) verify them against each provider's real HTTP handler and
// real message producers on a real Postgres database. `msctl contracts
// verify` runs the two phases in that order; `go test -tags contracts` alone
// runs both in one binary, consumers first (their files sort first).
package contracts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/internal/testenv"
	pactlog "github.com/pact-foundation/pact-go/v2/log"
)

// Environment the driver (internal/contractsrun) sets.
const (
	envPactDir = "CONTRACTS_PACT_DIR" // where pacts are written and read
	envPhase   = "CONTRACTS_PHASE"    // "providers": keep the pacts the consumer phase wrote
	// envRename makes one provider answer with one JSON field renamed,
	// "provider:old=new", to prove that verification catches it.
	envRename = "CONTRACTS_RENAME_FIELD"
)

func TestMain(m *testing.M) {
	// pact-go reports usage to pact.io unless told not to.
	os.Setenv("PACT_DO_NOT_TRACK", "true")
	if err := pactlog.SetLogLevel("ERROR"); err != nil {
		panic(err)
	}
	if os.Getenv(envPhase) != "providers" {
		// Pact merges into existing files: stale interactions must not survive.
		files, _ := filepath.Glob(filepath.Join(pactDir(), "*.json"))
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				panic(err)
			}
		}
	}
	testenv.Main(m)
}

func pactDir() string {
	if d := os.Getenv(envPactDir); d != "" {
		return d
	}
	d, err := filepath.Abs("pacts")
	if err != nil {
		panic(err)
	}
	return d
}
