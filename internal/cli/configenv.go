package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/envfile"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/redact"
	"github.com/msctl/msctl/internal/secrets"
)

type configEnvOptions struct {
	root *rootOptions
	env  string
	json bool
}

// newConfigEnvCmd has no --show-secrets: the values are in the user's own
// files, and a flag that prints them is one more way for them to end up
// in a terminal recording or a CI log; the file:line says where to look.
func newConfigEnvCmd(root *rootOptions) *cobra.Command {
	o := &configEnvOptions{root: root}
	cmd := command("env SERVICE", "Print a service's environment: each variable, its value (secrets masked) and where it comes from",
		cobra.ExactArgs(1), func(_ context.Context, args []string) error { return o.run(args[0]) })
	cmd.Long = "Prints the environment a service starts with in the environment --env: msctl.yaml's env:, then\n" +
		".env, .env.NAME (beside msctl.yaml), then the service directory's .env and .env.NAME, each overriding\n" +
		"the ones before, and the variables msctl sets itself. Values of secret-looking variables\n" +
		"(…PASSWORD, …SECRET, …TOKEN, …_KEY, …CREDENTIALS, passwords in URLs) are printed as " + redact.Masked + "."
	addEnvFlag(cmd, &o.env)
	cmd.Flags().BoolVar(&o.json, "json", false, "print the variables as a JSON array")
	return cmd
}

// envRow is one line of config env.
type envRow struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Source is msctl.yaml, file:line (relative to the workspace) or msctl.
	Source string `json:"source"`
	Secret bool   `json:"secret,omitempty"`
	// AtStart: msctl sets the value when an instance starts (it depends
	// on the runtime and the instance), so there is none to show yet.
	AtStart bool `json:"at_start,omitempty"`
}

func (o *configEnvOptions) run(svcName string) error {
	if err := envfile.CheckName(o.env); err != nil {
		return usageError(err)
	}
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	if err := checkServices(m, []string{svcName}); err != nil {
		return err
	}
	res, err := envfile.Resolve(m, o.env)
	if err != nil {
		return err
	}
	rows := map[string]envRow{}
	for _, n := range msctlVars(m.Services[svcName]) {
		rows[n] = envRow{Name: n, Source: envfile.SourceMsctl, AtStart: true, Secret: secrets.IsEnv(n)}
	}
	rows["SERVICE_NAME"] = envRow{Name: "SERVICE_NAME", Value: svcName, Source: envfile.SourceMsctl}
	if m.Services[svcName].Public {
		rows["GATEWAY_ROUTES"] = envRow{Name: "GATEWAY_ROUTES", Value: m.GatewayRoutes(), Source: envfile.SourceMsctl}
	}
	// msctl.yaml's env: may set msctl's own variables (the files may not),
	// and then wins, as when the service starts.
	for _, v := range res[svcName] {
		rows[v.Name] = envRow{Name: v.Name, Value: redact.Mask(v.Name, v.Value), Source: v.Source, Secret: len(redact.Parts(v.Name, v.Value)) > 0}
	}
	list := slices.SortedFunc(maps.Values(rows), func(a, b envRow) int { return strings.Compare(a.Name, b.Name) })
	if o.json {
		return writeListJSON(o.root.stdout, list)
	}
	tw := tabwriter.NewWriter(o.root.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tSOURCE")
	for _, r := range list {
		v := r.Value
		if r.AtStart {
			v = "(set at start)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, oneLine(v), r.Source)
	}
	return tw.Flush()
}

// msctlVars are the variables msctl sets for s whose values only exist
// once an instance starts (the derived secrets are printed by no command).
func msctlVars(s *manifest.Service) []string {
	vars := []string{"INSTANCE_ID", "HTTP_ADDR", "ADVERTISE_ADDR", "ETCD_ENDPOINTS", "NATS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", secrets.ServiceEnv}
	if s.Database {
		vars = append(vars, "DATABASE_URL")
	}
	for _, n := range s.Secrets {
		vars = append(vars, secrets.EnvName(n))
	}
	return vars
}

// oneLine keeps a multi-line value on its table row.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

// validateEnvFiles checks the .env files of every environment the
// workspace has files for (and of env), so that a broken .env.prod is
// found while working in dev; it returns the environments checked.
func validateEnvFiles(m *manifest.Manifest, env string) ([]string, error) {
	envs := []string{env}
	dirs := []string{m.Dir()}
	for _, n := range m.ServiceNames() {
		dirs = append(dirs, m.Services[n].Dir)
	}
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, ".env.*"))
		for _, f := range files {
			name := strings.TrimPrefix(filepath.Base(f), ".env.")
			if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && envfile.CheckName(name) == nil && !slices.Contains(envs, name) {
				envs = append(envs, name)
			}
		}
	}
	slices.Sort(envs)
	var all manifest.Errors
	seen := map[string]bool{}
	for _, e := range envs {
		_, err := envfile.Resolve(m, e)
		var es manifest.Errors
		if errors.As(err, &es) {
			for _, x := range es {
				// The shared files' problems come back for every environment.
				if !seen[x.Error()] {
					seen[x.Error()] = true
					all = append(all, x)
				}
			}
		} else if err != nil {
			return nil, err
		}
	}
	if len(all) > 0 {
		return nil, all
	}
	return envs, nil
}
