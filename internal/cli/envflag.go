package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/envfile"
	"github.com/msctl/msctl/internal/manifest"
)

// addEnvFlag adds --env, the environment whose .env files the command
// applies (see envfile), to the commands for which the services'
// environment matters: up, the agent, config, export. The others (ps,
// logs, down, …) read no .env file, so a broken one never keeps a user from
// looking at or stopping a workspace.
func addEnvFlag(cmd *cobra.Command, env *string) {
	def := os.Getenv(envfile.EnvVar)
	if def == "" {
		def = envfile.DefaultName
	}
	cmd.Flags().StringVar(env, "env", def,
		"environment: load .env, .env.NAME and each service's .env, .env.NAME over msctl.yaml's env: (default from $"+envfile.EnvVar+", else "+envfile.DefaultName+")")
}

// loadManifestEnv is loadManifest with the .env files of environment env
// applied to every service's Env.
func loadManifestEnv(root *rootOptions, env string) (*manifest.Manifest, error) {
	if err := envfile.CheckName(env); err != nil {
		return nil, usageError(err)
	}
	m, err := loadManifest(root)
	if err != nil {
		return nil, err
	}
	if err := envfile.Apply(m, env); err != nil {
		return nil, err
	}
	return m, nil
}
