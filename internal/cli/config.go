package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/envfile"
)

func newConfigCmd(root *rootOptions) *cobra.Command {
	return group("config", "Inspect the workspace manifest (msctl.yaml) and environments (.env files)",
		newConfigValidateCmd(root), newConfigEnvCmd(root))
}

type configValidateOptions struct {
	root *rootOptions
	env  string
}

func newConfigValidateCmd(root *rootOptions) *cobra.Command {
	o := &configValidateOptions{root: root}
	cmd := command("validate", "Check msctl.yaml and the .env files, and report every problem with its line and fix", cobra.NoArgs,
		func(context.Context, []string) error { return o.run() })
	// Shadows the global --file to add the -f shorthand validators expect.
	cmd.Flags().StringVarP(&root.file, "file", "f", "", "path to the msctl.yaml to check")
	addEnvFlag(cmd, &o.env)
	return cmd
}

func (o *configValidateOptions) run() error {
	path, err := manifestPath(o.root)
	if err != nil {
		return err
	}
	if err := envfile.CheckName(o.env); err != nil {
		return usageError(err)
	}
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	envs, err := validateEnvFiles(m, o.env)
	if err != nil {
		return err
	}
	n := len(m.Services)
	noun := "services"
	if n == 1 {
		noun = "service"
	}
	_, err = fmt.Fprintf(o.root.stdout, "%s: ok (%d %s; environments %s)\n", path, n, noun, strings.Join(envs, ", "))
	return err
}
