package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/doctor"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime/pick"
)

type doctorOptions struct {
	root *rootOptions
	json bool
	// env builds the machine probes for a gateway port and the infra
	// images; a seam for tests.
	env func(port int, source string, images []string) doctor.Env
}

func newDoctorCmd(root *rootOptions) *cobra.Command {
	o := &doctorOptions{root: root, env: doctor.Default}
	cmd := command("doctor", "Check this machine: Docker and its infra images, Go, Postgres binaries, Pact library, gateway port", cobra.NoArgs,
		func(ctx context.Context, _ []string) error { return o.run(ctx) })
	cmd.Long = "doctor checks what msctl needs from this machine and names a fix for each problem.\n" +
		"It exits 0 when the runtime that --runtime auto picks can run here, 1 otherwise."
	cmd.Flags().BoolVar(&o.json, "json", false, "print the checks as a JSON array of {name, ok, detail, fix}")
	return cmd
}

func (o *doctorOptions) run(ctx context.Context) error {
	port, source, images := o.workspace()
	r := doctor.Run(ctx, o.env(port, source, images))
	if err := o.print(r); err != nil {
		return err
	}
	if !r.RuntimeOK {
		return fmt.Errorf("the %s runtime cannot run on this machine; see the fixes above", r.Runtime)
	}
	return nil
}

// workspace reads the gateway port and the infra images from the workspace
// manifest when there is a valid one; doctor is also for machines without a
// workspace, so anything else falls back to the defaults.
func (o *doctorOptions) workspace() (port int, source string, images []string) {
	m, err := loadManifest(o.root)
	switch {
	case err == nil:
		return m.Gateway.Port, "from " + manifest.FileName, pick.Images(m)
	case errors.Is(err, manifest.ErrNotFound):
		return manifest.DefaultGatewayPort, "default, no " + manifest.FileName + " found", pick.Images(nil)
	default:
		return manifest.DefaultGatewayPort, "default, " + manifest.FileName + " is invalid", pick.Images(nil)
	}
}

func (o *doctorOptions) print(r doctor.Report) error {
	if o.json {
		return writeJSON(o.root.stdout, r.Checks)
	}
	tw := tabwriter.NewWriter(o.root.stdout, 0, 4, 2, ' ', 0)
	for _, c := range r.Checks {
		mark := "ok"
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
		}
	}
	return tw.Flush()
}
