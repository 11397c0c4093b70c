// Package cli is the latch command line: a cobra command tree over the
// builtin node (serve, migrate, keys) and over the admin REST API (admin).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/latchid/latch/kernel/config"
)

// version is set at build time with -ldflags "-X ...cli.version=v1.2.3".
var version = "dev"

// Main runs the command line with args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			return ex.code
		}
		fmt.Fprintln(stderr, "latch:", err)
		return 1
	}
	return 0
}

// exitError ends the command with a code after it printed its own message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "latch",
		Short:         "Latch: identity server and API security gateway",
		Long:          "Latch is an identity server (OIDC, OAuth2, SAML, SCIM) and API security gateway built as a small kernel that hosts extensions.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newServeCmd(),
		newGatewayCmd(),
		newVersionCmd(),
		newConfigCmd(),
		newMigrateCmd(),
		newKeysCmd(),
		newAdminCmd(),
		newPluginCmd(),
		newBundleCmd(),
		newApplyCmd(),
		newExportCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "latch %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// serverFlags adds the flags shared by the commands that load the server's
// configuration (serve, config print, migrate, keys).
func serverFlags(cmd *cobra.Command) {
	config.RegisterFlags(cmd.Flags())
}

// loadConfig loads and validates the configuration for cmd.
func loadConfig(cmd *cobra.Command) (config.Config, error) {
	path, _ := cmd.Flags().GetString(config.ConfigFlag)
	if path == "" {
		path = os.Getenv("LATCH_CONFIG")
	}
	cfg, err := config.Load(path, cmd.Flags(), os.Getenv)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// newLogger builds the process logger from the configuration.
func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
