package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/manifest"
)

// otlpExportFlag is --otlp-export of up and agent: where the agent forwards
// the OTLP it receives, overriding observability.export in msctl.yaml.
type otlpExportFlag string

func (f *otlpExportFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVar((*string)(f), "otlp-export", "", "forward the traces and metrics the agent receives to this OTLP/HTTP endpoint (Jaeger, Tempo, a collector), e.g. http://localhost:4318; overrides observability.export in msctl.yaml")
}

// apply checks the flag and sets it on m.
func (f otlpExportFlag) apply(m *manifest.Manifest) error {
	if f == "" {
		return nil
	}
	if err := manifest.CheckExport(string(f)); err != nil {
		return usageError(fmt.Errorf("--otlp-export %w", err))
	}
	m.Observability.Export = string(f)
	return nil
}
