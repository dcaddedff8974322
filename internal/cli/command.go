package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// command is the shape of every msctl command: run gets the command's
// context (cancelled on SIGINT) and its arguments, which args checks first.
func command(use, short string, args cobra.PositionalArgs, run func(ctx context.Context, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE:  func(cmd *cobra.Command, a []string) error { return run(cmd.Context(), a) },
	}
}

// group is a command that only holds subcommands. It runs (printing its
// help) so that an unknown subcommand is a usage error rather than a silent
// help page.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := command(use, short, cobra.NoArgs, nil)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	cmd.AddCommand(subs...)
	return cmd
}
