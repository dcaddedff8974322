package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/contractsrun"
	"github.com/msctl/msctl/internal/doctor"
)

type contractsOptions struct {
	root     *rootOptions
	json     bool // for verify and can-i-deploy alike
	junit    string
	consumer string
	provider string
	// findLib and run are seams for tests.
	findLib func() (string, error)
	run     func(ctx context.Context, opts contractsrun.Options) (*contractsrun.Report, error)
}

func newContractsCmd(root *rootOptions) *cobra.Command {
	return contractsCmd(&contractsOptions{root: root, findLib: doctor.FindPactLib, run: contractsrun.Run})
}

// contractsCmd builds the command tree around o, whose seams tests replace.
func contractsCmd(o *contractsOptions) *cobra.Command {
	verify := command("verify", "Run the consumer tests, then verify every provider; print the consumer × provider matrix", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return o.verify(ctx) })
	verify.Long = "verify runs the consumer contract tests in contracts/ (writing fresh pacts to contracts/pacts),\n" +
		"then verifies each provider against them, with `go test -tags contracts`. It needs the Pact FFI\n" +
		"library (`make pact`) and cgo. The results are kept for `msctl contracts can-i-deploy`.\n" +
		"Exit status 1 names each failing interaction and its mismatch."
	verify.Flags().BoolVar(&o.json, "json", false, "print the report as JSON")
	verify.Flags().StringVar(&o.junit, "junit", "", "also write the results as JUnit XML to `FILE`")
	verify.Flags().StringVar(&o.consumer, "consumer", "", "run only this consumer's tests (and verify only its pacts)")
	verify.Flags().StringVar(&o.provider, "provider", "", "verify only this provider")
	canIDeploy := command("can-i-deploy SERVICE", "Say from the last verify results whether SERVICE can be deployed, and why", cobra.ExactArgs(1),
		func(_ context.Context, args []string) error { return o.canIDeploy(args[0]) })
	canIDeploy.Long = "can-i-deploy reads the results the last `msctl contracts verify` stored under .msctl/ (no tests\n" +
		"run) and answers yes when every pact SERVICE is part of, as consumer or provider, was verified\n" +
		"and passed. It exits 1 on no."
	canIDeploy.Flags().BoolVar(&o.json, "json", false, "print the answer as JSON: {service, deploy, results_of, reasons}")
	return group("contracts", "Run the Pact contract tests and decide what can be deployed", verify, canIDeploy)
}

// projectDir validates the manifest, as every workspace command does before
// acting, and returns the workspace root: the directory of msctl.yaml.
func (o *contractsOptions) projectDir() (string, error) {
	if _, err := loadManifest(o.root); err != nil {
		return "", err
	}
	path, err := manifestPath(o.root)
	if err != nil {
		return "", err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("workspace directory: %w", err)
	}
	return dir, nil
}

func (o *contractsOptions) verify(ctx context.Context) error {
	dir, err := o.projectDir()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "contracts")); err != nil {
		return usageError(fmt.Errorf("no contracts/ directory in %s: contract tests live there (see msctl new service)", dir))
	}
	if _, err := o.findLib(); err != nil {
		return fmt.Errorf("the Pact FFI library is missing (%v); install it with `make pact`", err)
	}
	rep, err := o.run(ctx, contractsrun.Options{ModuleDir: dir, Consumer: o.consumer, Provider: o.provider, Progress: o.root.stderr})
	if err != nil {
		return fmt.Errorf("contracts verify: %w", err)
	}
	if err := rep.Save(dir); err != nil {
		return err
	}
	if o.junit != "" {
		if err := o.writeJUnit(rep); err != nil {
			return err
		}
	}
	if o.json {
		if err := writeJSON(o.root.stdout, rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else if err := rep.WriteMatrix(o.root.stdout); err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("contract verification failed: %d failures", len(rep.Failures))
	}
	return nil
}

func (o *contractsOptions) writeJUnit(rep *contractsrun.Report) error {
	pacts, err := contractsrun.LoadPacts(rep.PactDir)
	if err != nil {
		return err
	}
	f, err := os.Create(o.junit)
	if err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if err := rep.WriteJUnit(f, pacts); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

// deployAnswer is can-i-deploy's answer for --json.
type deployAnswer struct {
	Service   string    `json:"service"`
	Deploy    bool      `json:"deploy"`
	ResultsOf time.Time `json:"results_of"`
	Reasons   []string  `json:"reasons"`
}

func printDeployAnswer(w io.Writer, ok bool, resultsOf time.Time, reasons []string) error {
	answer := "yes"
	if !ok {
		answer = "no"
	}
	if _, err := fmt.Fprintf(w, "%s (results of %s)\n", answer, resultsOf.Format("2006-01-02 15:04:05 MST")); err != nil {
		return err
	}
	for _, r := range reasons {
		if _, err := fmt.Fprintf(w, "  - %s\n", r); err != nil {
			return err
		}
	}
	return nil
}

// errCannotDeploy is can-i-deploy's "no": exit 1 after the reasons.
var errCannotDeploy = errors.New("cannot deploy")

func (o *contractsOptions) canIDeploy(service string) error {
	dir, err := o.projectDir()
	if err != nil {
		return err
	}
	rep, err := contractsrun.Load(dir)
	if err != nil {
		if errors.Is(err, contractsrun.ErrNoResults) {
			return fmt.Errorf("%w; run `msctl contracts verify` first", err)
		}
		return err
	}
	ok, reasons := rep.CanIDeploy(service)
	if o.json {
		if reasons == nil {
			reasons = []string{}
		}
		err = writeJSON(o.root.stdout, deployAnswer{Service: service, Deploy: ok, ResultsOf: rep.StartedAt, Reasons: reasons})
	} else {
		err = printDeployAnswer(o.root.stdout, ok, rep.StartedAt, reasons)
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: %w", service, errCannotDeploy)
	}
	return nil
}
