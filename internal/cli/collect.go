package cli

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/k8s/gen"
	"github.com/msctl/msctl/internal/runtime/kubernetes"
)

// newCollectCmd is the in-cluster telemetry collector of the kubernetes
// runtime: the msctl binary in the msctl-collector pod. Services export
// OTLP to it; the agent fetches what it buffered through a port-forward.
func newCollectCmd() *cobra.Command {
	addr := ":" + strconv.Itoa(gen.CollectorPort)
	cmd := &cobra.Command{
		Use:    "collect",
		Short:  "Receive OTLP/HTTP traces and serve them to the agent (the kubernetes runtime's collector)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return collect(cmd.Context(), addr)
		},
	}
	cmd.Flags().StringVar(&addr, "listen", addr, "address to listen on")
	return cmd
}

func collect(ctx context.Context, addr string) error {
	return serveHTTP(ctx, addr, kubernetes.NewCollector())
}

// serveHTTP serves h on addr until ctx ends (SIGTERM: the pod or container
// stops), then shuts down gracefully.
func serveHTTP(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
