package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/contractsrun"
	"github.com/msctl/msctl/internal/testenv"
)

func TestContractsVerifyNeedsPactLib(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "contracts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "msctl.yaml"), []byte("project: shop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := false
	o := &contractsOptions{
		root:    &rootOptions{file: filepath.Join(dir, "msctl.yaml"), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}},
		findLib: func() (string, error) { return "", errors.New("libpact_ffi.so not found") },
		run: func(context.Context, contractsrun.Options) (*contractsrun.Report, error) {
			ran = true
			return &contractsrun.Report{OK: true}, nil
		},
	}
	err := o.verify(context.Background())
	if err == nil || !strings.Contains(err.Error(), "make pact") || ran {
		t.Errorf("verify without the library: err %v, tests ran %v", err, ran)
	}
}

// TestContractsVerifyCommand runs `msctl contracts verify --json --junit` on
// this repository's contract suite.
func TestContractsVerifyCommand(t *testing.T) {
	testenv.RequirePact(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(t.TempDir(), "contracts.xml")
	var stdout, stderr bytes.Buffer
	code := run([]string{"--file", filepath.Join(repo, "msctl.yaml"), "contracts", "verify", "--json", "--junit", junit}, &stdout, &stderr, newRootCmd)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	var rep contractsrun.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || !rep.OK || len(rep.Pairs) == 0 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	if raw, err := os.ReadFile(junit); err != nil || !bytes.Contains(raw, []byte("<testsuites")) {
		t.Errorf("junit: %v %.200s", err, raw)
	}
	code = run([]string{"--file", filepath.Join(repo, "msctl.yaml"), "contracts", "can-i-deploy", "orders"}, &stdout, &stderr, newRootCmd)
	if code != exitOK {
		t.Errorf("can-i-deploy orders after a green verify: exit %d\n%s", code, stderr.String())
	}
}
