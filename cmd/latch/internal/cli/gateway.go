package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchid/latch/builtin/node"
)

func newGatewayCmd() *cobra.Command {
	var routes, listen string
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the API gateway alone",
		Long: `Run the API gateway role without the identity server's endpoints: it
proxies the APIs of the routes file (docs/gateway.md) on gateway.listen,
validating tokens against each issuer's JWKS, applying deny policies and
rate limits, and sending backend JWTs signed with Latch's keys. The main
listener serves only /healthz, /readyz and /metrics. Point it at the same
store as the identity nodes to share deny policies and signing keys. The
routes file is hot-reloaded; a bad edit is refused and the running routes
stay. SIGTERM or Ctrl-C drains in-flight requests before exiting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if routes != "" {
				cfg.Gateway.RoutesFile = routes
			}
			if listen != "" {
				cfg.Gateway.Listen = listen
			}
			if cfg.Gateway.RoutesFile == "" {
				return fmt.Errorf("no routes file: pass --routes or set gateway.routes_file")
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			log := newLogger(cmd.ErrOrStderr(), cfg)
			n, err := node.OpenGateway(cmd.Context(), cfg, log, node.Options{Stdout: cmd.OutOrStdout(), Version: version})
			if err != nil {
				return err
			}
			return n.Serve(cmd.Context())
		},
	}
	serverFlags(cmd)
	cmd.Flags().StringVar(&routes, "routes", "", "the routes file (overrides gateway.routes_file)")
	cmd.Flags().StringVar(&listen, "gateway-listen", "", "host:port the gateway serves on (overrides gateway.listen)")
	return cmd
}
