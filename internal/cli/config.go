package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func newConfigCmd(root *rootOptions) *cobra.Command {
	return group("config", "Inspect the workspace manifest (msctl.yaml)", newConfigValidateCmd(root))
}

type configValidateOptions struct {
	root *rootOptions
}

func newConfigValidateCmd(root *rootOptions) *cobra.Command {
	o := &configValidateOptions{root: root}
	cmd := command("validate", "Check msctl.yaml and report every problem with its line and fix", cobra.NoArgs,
		func(context.Context, []string) error { return o.run() })
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
