package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchid/latch/builtin/node"
	"github.com/latchid/latch/kernel/store"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Long: `Run a Latch node. On first start it creates the default tenant, its signing
keys, an admin user and the latch-admin API client, and prints the generated
credentials once (set LATCH_BOOTSTRAP_ADMIN_PASSWORD and
LATCH_BOOTSTRAP_CLIENT_SECRET to choose them). SIGTERM or Ctrl-C drains
in-flight requests before exiting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg)
			n, err := node.Open(cmd.Context(), cfg, log, node.Options{Stdout: cmd.OutOrStdout(), Version: version})
			if err != nil {
				return err
			}
			return n.Serve(cmd.Context())
		},
	}
	serverFlags(cmd)
	return cmd
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	printCmd := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (file < environment < flags), secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return cfg.Print(cmd.OutOrStdout())
		},
	}
	serverFlags(printCmd)
	cmd.AddCommand(printCmd)
	return cmd
}

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the store's schema up to date, then exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			st, err := node.OpenStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "store (%s) is up to date\n", cfg.Store.Driver)
			return st.Close()
		},
	}
	serverFlags(cmd)
	return cmd
}

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage signing keys"}
	var tenant, alg string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key active; the old one stays published for the overlap window",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			st, err := node.OpenStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer func() { _ = st.Close() }()
			t, err := st.GetTenantByName(cmd.Context(), tenant)
			if err != nil {
				return fmt.Errorf("finding tenant %q: %w", tenant, err)
			}
			km, err := node.OpenKeys(cfg, st, newLogger(cmd.ErrOrStderr(), cfg))
			if err != nil {
				return err
			}
			kid, err := km.Rotate(cmd.Context(), t.ID, alg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenant %s now signs with key %s\n", t.Name, kid)
			return nil
		},
	}
	serverFlags(rotate)
	rotate.Flags().StringVar(&tenant, "tenant", store.DefaultTenantName, "tenant whose key to rotate")
	rotate.Flags().StringVar(&alg, "algorithm", "", "algorithm of the new key: ES256, RS256 or EdDSA (default: keys.algorithm)")
	prepare := &cobra.Command{
		Use:   "prepare",
		Short: "Publish the next signing key now; the next rotate makes it active",
		Long: "Publish the next signing key in the JWK Set without signing with it. Rotate more than five\n" +
			"minutes later (how long clients may cache the JWK Set): every relying party then knows the key\n" +
			"before the first token signed with it, on every node of a cluster.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			st, err := node.OpenStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer func() { _ = st.Close() }()
			t, err := st.GetTenantByName(cmd.Context(), tenant)
			if err != nil {
				return fmt.Errorf("finding tenant %q: %w", tenant, err)
			}
			km, err := node.OpenKeys(cfg, st, newLogger(cmd.ErrOrStderr(), cfg))
			if err != nil {
				return err
			}
			kid, err := km.PrepareNext(cmd.Context(), t.ID, alg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenant %s publishes key %s; run latch keys rotate in 5 minutes or more to sign with it\n", t.Name, kid)
			return nil
		},
	}
	serverFlags(prepare)
	prepare.Flags().StringVar(&tenant, "tenant", store.DefaultTenantName, "tenant whose next key to prepare")
	prepare.Flags().StringVar(&alg, "algorithm", "", "algorithm of the key: ES256, RS256 or EdDSA (default: keys.algorithm)")
	cmd.AddCommand(rotate, prepare)
	return cmd
}
