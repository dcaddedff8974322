// Package cli is msctl's command line: one file per command, each with an
// options struct holding its flags and dependencies. Main builds the command
// tree, runs it, and is the one place errors are printed and turned into exit
// codes.
package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// rootOptions holds what every command shares: the global flags and the
// process's streams. Each command's constructor takes it and keeps it in its
// own options struct.
type rootOptions struct {
	// file is --file: the manifest path; empty means found with
	// manifest.Find from the working directory.
	file   string
	stdout io.Writer
	stderr io.Writer
	// factory is how commands reach the agent, the runtimes and leftovers;
	// tests replace its functions.
	factory
}

// newRootCmd builds the command tree. A new command is one more
// root.AddCommand(newXxxCmd(opts)) line here.
func newRootCmd(opts *rootOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "msctl",
		Short: "Scaffold, run, contract-test and watch a microservice system",
		Long: "msctl runs a complete microservice system (gateway, services, broker, registry, one database per\n" +
			"service) in local Docker containers or as plain processes, scaffolds new services, runs Pact\n" +
			"contract tests and shows a terminal dashboard.",
		Version:       versionString(),
		SilenceErrors: true, // Main prints errors, once
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("msctl {{.Version}}\n")
	root.SetOut(opts.stdout)
	root.SetErr(opts.stderr)
	// No shorthand: -f means --follow for logs, as in other tools; config validate
	// keeps -f for the file it checks.
	root.PersistentFlags().StringVar(&opts.file, "file", "", "path to msctl.yaml (default: found from the current directory upwards)")

	root.AddCommand(
		newConfigCmd(opts),
		newDoctorCmd(opts),
		newUpCmd(opts),
		newDownCmd(opts),
		newPsCmd(opts),
		newLogsCmd(opts),
		newRestartCmd(opts),
		newDlqCmd(opts),
		newChaosCmd(opts),
		newTopCmd(opts),
		newAgentCmd(opts),
	)
	root.AddCommand(newDashCmd(opts))
	root.AddCommand(newContractsCmd(opts))
	root.AddCommand(newNewCmd(opts))
	root.AddCommand(newExportCmd(opts))
	return root
}

// Main runs msctl with the process's arguments and returns its exit code.
func Main() int {
	return run(os.Args[1:], os.Stdout, os.Stderr, newRootCmd)
}

// run executes the command tree built by build. SIGINT and SIGTERM cancel
// the context handed to commands; a command interrupted that way exits 130.
func run(args []string, stdout, stderr io.Writer, build func(*rootOptions) *cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, restore the default handling so a second
		// Ctrl-C kills a command that is slow to wind down.
		<-ctx.Done()
		stop()
	}()

	root := build(&rootOptions{stdout: stdout, stderr: stderr, factory: defaultFactory()})
	root.SetArgs(args)
	started := markStarted(root)
	err := root.ExecuteContext(ctx)
	code := exitCode(ctx, err, *started)
	printError(stderr, err, code)
	return code
}

// markStarted wraps every command's RunE to record that cobra accepted the
// invocation (command, flags, arguments) and the command itself began: an
// error before that is the user's, exit code 2.
func markStarted(root *cobra.Command) *bool {
	started := new(bool)
	// Add cobra's own help and completion commands now so they are wrapped too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var wrap func(*cobra.Command)
	wrap = func(c *cobra.Command) {
		if runE := c.RunE; runE != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				*started = true
				return runE(cmd, args)
			}
		} else if runF := c.Run; runF != nil {
			c.Run = func(cmd *cobra.Command, args []string) {
				*started = true
				runF(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
	return started
}
