package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/manifest"
)

func TestExitCode(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		started bool
		want    int
	}{
		{"ok", live, nil, true, 0},
		{"failure", live, errors.New("boom"), true, 1},
		{"rejected by cobra", live, errors.New(`unknown flag: --x`), false, 2},
		{"usage error", live, usageError(errors.New("need a name")), true, 2},
		{"wrapped usage error", live, fmt.Errorf("new: %w", usageError(errors.New("bad"))), true, 2},
		{"manifest error", live, &manifest.Error{File: "msctl.yaml", Line: 3, Msg: "bad"}, true, 2},
		{"manifest errors", live, manifest.Errors{{File: "msctl.yaml", Line: 3, Msg: "bad"}}, true, 2},
		{"interrupted with error", cancelled, context.Canceled, true, 130},
		{"interrupted cleanly", cancelled, nil, true, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.ctx, tt.err, tt.started); got != tt.want {
				t.Errorf("exitCode = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPrintError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		want string
	}{
		{"nil", nil, 0, ""},
		{"failure", errors.New("boom"), 1, "msctl: boom\n"},
		{"usage", errors.New("unknown flag: --x"), 2, "msctl: unknown flag: --x\nRun 'msctl --help' for usage.\n"},
		{"interrupt", context.Canceled, 130, ""},
		{
			"manifest errors", manifest.Errors{
				{File: "m.yaml", Line: 1, Msg: "a", Fix: "fa"},
				{File: "m.yaml", Line: 2, Msg: "b", Fix: "fb"},
			}, 2,
			"msctl: m.yaml:1: a\n\tfix: fa\nmsctl: m.yaml:2: b\n\tfix: fb\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			printError(&b, tt.err, tt.code)
			if b.String() != tt.want {
				t.Errorf("printed %q, want %q", b.String(), tt.want)
			}
		})
	}
}

// TestInterruptExits130 sends this process a real SIGINT while a command
// waits on its context: run must cancel the context and exit 130.
func TestInterruptExits130(t *testing.T) {
	started := make(chan struct{})
	build := func(opts *rootOptions) *cobra.Command {
		root := newRootCmd(opts)
		root.AddCommand(&cobra.Command{
			Use: "block",
			RunE: func(cmd *cobra.Command, _ []string) error {
				close(started)
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(10 * time.Second):
					return errors.New("not interrupted")
				}
			},
		})
		return root
	}
	go func() {
		<-started
		_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"block"}, &stdout, &stderr, build); code != 130 {
		t.Fatalf("exit code = %d, want 130 (stderr %q)", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}
}

// TestHelpListsOnlyWorkingCommands guards against placeholder commands:
// every command shown in help must run something or group commands that do.
func TestHelpListsOnlyWorkingCommands(t *testing.T) {
	root := newRootCmd(&rootOptions{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	var check func(*cobra.Command)
	check = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() {
				continue
			}
			if sub.RunE == nil && sub.Run == nil && !sub.HasAvailableSubCommands() {
				t.Errorf("%q is listed but does nothing", sub.CommandPath())
			}
			if strings.Contains(strings.ToLower(sub.Short), "not implemented") {
				t.Errorf("%q is a placeholder: %s", sub.CommandPath(), sub.Short)
			}
			check(sub)
		}
	}
	check(root)
}

// TestReadCommandsTakeJSON: every command that reads state for the user
// prints it for machines too.
func TestReadCommandsTakeJSON(t *testing.T) {
	root := newRootCmd(&rootOptions{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	for _, path := range [][]string{{"ps"}, {"logs"}, {"doctor"}, {"contracts", "verify"}, {"contracts", "can-i-deploy"}, {"dlq", "ls"}, {"dlq", "show"}, {"top"}} {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		if cmd.Flags().Lookup("json") == nil {
			t.Errorf("msctl %s has no --json", strings.Join(path, " "))
		}
	}
}
