package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newConfigCmd(root *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the workspace manifest (msctl.yaml)",
		Args:  cobra.NoArgs,
		// Runnable so that an unknown subcommand is a usage error rather
		// than a silent help page.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newConfigValidateCmd(root))
	return cmd
}

type configValidateOptions struct {
	root *rootOptions
}

func newConfigValidateCmd(root *rootOptions) *cobra.Command {
	o := &configValidateOptions{root: root}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check msctl.yaml and report every problem with its line and fix",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.run() },
	}
	// Shadows the global --file to add the -f shorthand validators expect.
	cmd.Flags().StringVarP(&root.file, "file", "f", "", "path to the msctl.yaml to check")
	return cmd
}

func (o *configValidateOptions) run() error {
	path, err := manifestPath(o.root)
	if err != nil {
		return err
	}
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	n := len(m.Services)
	noun := "services"
	if n == 1 {
		noun = "service"
	}
	_, err = fmt.Fprintf(o.root.stdout, "%s: ok (%d %s)\n", path, n, noun)
	return err
}
