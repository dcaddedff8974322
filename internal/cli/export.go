package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/secrets"
)

func newExportCmd(root *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the workspace for another tool to run",
		Args:  cobra.NoArgs,
		// Runnable so that an unknown subcommand is a usage error rather
		// than a silent help page.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newExportK8sCmd(root))
	return cmd
}

type exportK8sOptions struct {
	root           *rootOptions
	out            string
	tag            string
	collectorImage string
}

func newExportK8sCmd(root *rootOptions) *cobra.Command {
	o := &exportK8sOptions{root: root}
	cmd := &cobra.Command{
		Use:   "k8s",
		Short: "Write the Kubernetes objects `up --runtime kubernetes` applies, as a kustomize base",
		Long: "Writes a kustomize base (kustomization.yaml and one file per object) of the objects the kubernetes\n" +
			"runtime applies: the namespace, Secrets, Postgres, NATS and etcd StatefulSets, a Deployment and\n" +
			"Service per service, NetworkPolicies, PodDisruptionBudgets and autoscalers. Apply it with\n" +
			"`kubectl apply -k DIR`.\n\n" +
			"Service images are msctl/<project>-<service>:TAG (under kubernetes.registry when set); push them\n" +
			"there first. Database passwords are drawn anew on every export: the provisioning Jobs set them,\n" +
			"and pods using them roll. Files a previous export wrote that are no longer objects are removed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run() },
	}
	cmd.Flags().StringVar(&o.out, "out", "k8s", "directory to write the base into")
	// The runtime tags images with a content hash it computes while
	// building; export builds nothing, so the tag is the user's to choose.
	cmd.Flags().StringVar(&o.tag, "tag", gen.DefaultTag, "tag of the service images")
	cmd.Flags().StringVar(&o.collectorImage, "collector-image", "",
		"image of an OTLP/HTTP collector to deploy as msctl-collector (default: none, tracing off)")
	return cmd
}

func (o *exportK8sOptions) run() error {
	if o.tag == "" {
		return usageError(fmt.Errorf("--tag must not be empty"))
	}
	m, err := loadManifest(o.root)
	if err != nil {
		return err
	}
	tags := map[string]string{}
	for _, name := range m.ServiceNames() {
		tags[name] = o.tag
	}
	// The workspace's own secret, so that what the exported services seal
	// and what a running workspace sealed agree.
	secret, err := secrets.LoadOrCreate(agent.StateDir(m.Dir()))
	if err != nil {
		return err
	}
	spec, err := gen.FromManifest(m, gen.Options{
		Tags:           tags,
		Password:       func(string) (string, error) { return gen.NewPassword() },
		CollectorImage: o.collectorImage,
		Secret:         secret,
	})
	if err != nil {
		return err
	}
	objs, err := gen.Objects(spec)
	if err != nil {
		return err
	}
	if err := gen.WriteKustomize(o.out, objs); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.root.stderr, "wrote %d objects of namespace %s to %s; apply with: kubectl apply -k %s\n",
		len(objs), spec.Namespace, o.out, o.out)
	return err
}
