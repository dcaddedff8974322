package cli

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"msctl": func() { os.Exit(Main()) },
	})
}

// TestScript runs the end-to-end scripts in testdata/script against the real
// msctl binary (this test binary, re-executed as msctl).
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":     cmdExitCode,
			"doctorchecks": cmdDoctorChecks,
		},
	})
}

// cmdExitCode runs a command and asserts its exit code, which testscript's
// own "! cmd" cannot tell apart (1 vs 2 vs 130).
//
//	exitcode CODE[,CODE...] command [args...]
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE[,CODE...] command [args...]")
	}
	var want []int
	for _, s := range strings.Split(args[0], ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			ts.Fatalf("bad exit code %q", s)
		}
		want = append(want, n)
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("run %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if !slices.Contains(want, got) {
		ts.Fatalf("%s exited %d, want %s", args[1], got, args[0])
	}
}

// cmdDoctorChecks asserts stdout is doctor's JSON: an array with exactly the
// named checks, in order, each an object of name, ok, detail and fix.
//
//	doctorchecks NAME...
func cmdDoctorChecks(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! doctorchecks")
	}
	var checks []map[string]any
	if err := json.Unmarshal([]byte(ts.ReadFile("stdout")), &checks); err != nil {
		ts.Fatalf("stdout is not a JSON array of objects: %v", err)
	}
	var names []string
	for i, c := range checks {
		if len(c) != 4 {
			ts.Fatalf("check %d has keys %v, want name, ok, detail, fix", i, c)
		}
		name, ok1 := c["name"].(string)
		_, ok2 := c["ok"].(bool)
		_, ok3 := c["detail"].(string)
		_, ok4 := c["fix"].(string)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			ts.Fatalf("check %d has wrong types: %v", i, c)
		}
		names = append(names, name)
	}
	if !slices.Equal(names, args) {
		ts.Fatalf("checks = %v, want %v", names, args)
	}
}
