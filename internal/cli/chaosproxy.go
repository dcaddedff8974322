package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/chaos"
)

// newChaosProxyCmd is the chaos proxy of the docker and kubernetes
// runtimes: the msctl binary in a container or pod of the workspace, in
// front of every edge, so that services reach each other and the infra
// whether or not an agent runs, and faults outlive the agent. The agent
// adds and removes faults through its control API.
func newChaosProxyCmd() *cobra.Command {
	control := ":" + strconv.Itoa(chaos.ControlPort)
	var edges []string
	cmd := &cobra.Command{
		Use:    "chaos-proxy",
		Short:  "Proxy the workspace's edges and apply msctl chaos faults to them (the docker and kubernetes runtimes' chaos proxy)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			parsed := make([]chaos.ProxyEdge, len(edges))
			for i, s := range edges {
				e, err := chaos.ParseProxyEdge(s)
				if err != nil {
					return err
				}
				parsed[i] = e
			}
			set, err := chaos.ListenEdges(parsed)
			if err != nil {
				return err
			}
			defer set.Close()
			return serveHTTP(cmd.Context(), control, chaos.Handler(chaos.Local(set)))
		},
	}
	cmd.Flags().StringVar(&control, "control", control, "address of the control API")
	cmd.Flags().StringArrayVar(&edges, "edge", nil, "an edge to proxy, from->to=port=host:port (repeatable)")
	return cmd
}
