package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/scaffold"
	"github.com/msctl/msctl/templates"
)

type newOptions struct {
	root      *rootOptions
	lang      string
	db        bool
	route     string
	public    bool
	consumes  []string
	publishes []string
	depends   []string
	port      int
	dryRun    bool
}

func newNewCmd(root *rootOptions) *cobra.Command {
	cmd := command("new", "Scaffold a new service; without arguments, list the templates", cobra.NoArgs,
		func(context.Context, []string) error { return listTemplates(root.stdout) })
	cmd.AddCommand(newNewServiceCmd(root))
	return cmd
}

func listTemplates(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TEMPLATE\tVERSION\tDESCRIPTION\n")
	for _, s := range templates.Sets() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, templates.Version, s.Description)
	}
	fmt.Fprintf(tw, "\nUsage: msctl new service NAME [--lang go] [--db] [--route /api/v1/PATH [--public]] [--consumes EVT,...] [--publishes EVT,...] [--depends SVC,...] [--port N] [--dry-run]\n")
	return tw.Flush()
}

func newNewServiceCmd(root *rootOptions) *cobra.Command {
	o := &newOptions{root: root}
	cmd := &cobra.Command{
		Use:   "service NAME",
		Short: "Scaffold a service wired into the workspace: code, tests, database, route, events, contract stub",
		Long: "service creates services/NAME from the embedded template set, adds it to msctl.yaml (with its\n" +
			"gateway route) and adds a contract stub under contracts/. It refuses, changing nothing, when the\n" +
			"name is invalid or taken, the route is not a clean prefix or overlaps (equals, lies under or contains)\n" +
			"another service's, a dependency or an event is unknown. Everything is written at once or not at all.\n\n" +
			"Events are the constants of services/kit/events: " + strings.Join(scaffold.EventNames(), ", ") + ".",
		Example: "  msctl new service shipping --db --route /api/v1/shipping --consumes OrderConfirmed",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return o.run(o.root.stdout, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.lang, "lang", "go", "template set (msctl new lists them)")
	f.BoolVar(&o.db, "db", false, "give the service its own Postgres database and migrations")
	f.StringVar(&o.route, "route", "", "gateway path prefix the service serves, e.g. /api/v1/shipping (JWT required unless --public)")
	f.BoolVar(&o.public, "public", false, "make --route reachable without a token")
	f.StringSliceVar(&o.consumes, "consumes", nil, "events to subscribe to through kit/bus and an inbox, e.g. OrderConfirmed (implies --db)")
	f.StringSliceVar(&o.publishes, "publishes", nil, "events to publish through a transactional outbox (implies --db)")
	f.StringSliceVar(&o.depends, "depends", nil, "services that must be ready before this one starts")
	f.IntVar(&o.port, "port", 0, "fixed host port (default: a free one at start)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would be created and change nothing")
	return cmd
}

func (o *newOptions) run(w io.Writer, name string) error {
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	plan, err := scaffold.New(scaffold.Options{
		ManifestPath: m.Path(),
		Lang:         o.lang,
		Name:         name,
		DB:           o.db,
		Route:        o.route,
		Public:       o.public,
		Consumes:     o.consumes,
		Publishes:    o.publishes,
		Depends:      o.depends,
		Port:         o.port,
	})
	if err != nil {
		return refusal(err)
	}
	if o.dryRun {
		printPlan(w, plan, m, "would create", "would add to")
		fmt.Fprintln(w, "\nDry run: nothing was written.")
		return nil
	}
	if err := plan.Apply(); err != nil {
		return refusal(fmt.Errorf("create service %s (nothing was changed): %w", name, err))
	}
	printPlan(w, plan, m, "created", "added to")
	printNext(w, plan, m)
	return nil
}

// refusal makes a refused request exit 2, like any other usage problem.
func refusal(err error) error {
	var r *scaffold.Refusal
	if errors.As(err, &r) {
		return usageError(err)
	}
	return err
}

func printPlan(w io.Writer, p *scaffold.Plan, m *manifest.Manifest, create, add string) {
	fmt.Fprintf(w, "Service %s from template %s v%s:\n", p.Service, p.Template, p.Version)
	for _, f := range p.Files {
		fmt.Fprintf(w, "  %s %s\n", create, f.Path)
	}
	fmt.Fprintf(w, "  %s %s:\n", add, relTo(m.Dir(), p.ManifestPath))
	for _, l := range strings.SplitAfter(strings.TrimRight(p.Entry, "\n"), "\n") {
		fmt.Fprintf(w, "    %s", l)
	}
	fmt.Fprintln(w)
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func printNext(w io.Writer, p *scaffold.Plan, m *manifest.Manifest) {
	fmt.Fprintf(w, "\nNext:\n")
	fmt.Fprintf(w, "  go test ./%s/...        # the generated tests\n", p.Dir)
	fmt.Fprintf(w, "  msctl up                             # starts %s with the rest\n", p.Service)
	if s := routeOf(p, m); s != "" {
		fmt.Fprintf(w, "  %s\n", s)
		fmt.Fprintf(w, "  msctl contracts verify               # includes gateway -> %s\n", p.Service)
	}
	fmt.Fprintf(w, "  then grow %s/domain, app and api into what %s is for.\n", p.Dir, p.Service)
}

func routeOf(p *scaffold.Plan, m *manifest.Manifest) string {
	if p.Route == "" {
		return ""
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s/items", m.Gateway.Port, p.Route)
	if p.Access == manifest.AccessAuth {
		return "curl -H \"Authorization: Bearer $TOKEN\" " + url + "   # token from POST /api/v1/auth/login"
	}
	return "curl " + url
}

func relTo(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil {
		return rel
	}
	return p
}
