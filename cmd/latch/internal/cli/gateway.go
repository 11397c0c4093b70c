package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

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
	a := &adminClient{http: &http.Client{Timeout: 30 * time.Second}}
	cmd.AddCommand(gatewayAdmin(a, newGatewayDocsCmd(a, "apis", "API")), gatewayAdmin(a, newGatewayDocsCmd(a, "upstreams", "upstream")),
		gatewayAdmin(a, newGatewayImportCmd(a)))
	return cmd
}

// gatewayAdmin gives cmd the admin API client's flags (as `latch admin`
// has them): the gateway's stored configuration is managed through a
// running server's admin API.
func gatewayAdmin(a *adminClient, cmd *cobra.Command) *cobra.Command {
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.base, "url", envOr("LATCH_URL", "http://127.0.0.1:8080"), "base URL of the server")
	pf.StringVar(&a.clientID, "client-id", envOr("LATCH_ADMIN_CLIENT_ID", "latch-admin"), "admin client id")
	pf.StringVar(&a.secret, "client-secret", os.Getenv("LATCH_ADMIN_CLIENT_SECRET"), "admin client secret")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if a.secret == "" {
			return errors.New("no admin client secret: set LATCH_ADMIN_CLIENT_SECRET or pass --client-secret")
		}
		return nil
	}
	return cmd
}

// newGatewayDocsCmd manages the stored APIs or upstreams
// (/gateway/apis, /gateway/upstreams).
func newGatewayDocsCmd(a *adminClient, plural, noun string) *cobra.Command {
	path := "/gateway/" + plural
	cmd := &cobra.Command{
		Use:   plural,
		Short: "Manage the gateway " + noun + "s stored in the database",
		Long: `Manage the gateway ` + noun + `s stored in the database through the admin API. Every
gateway node merges them with its routes file and follows changes within a
second; names the routes file uses are refused.`,
	}
	put := &cobra.Command{
		Use: "put FILE", Short: "Create or replace a stored " + noun + " from a YAML or JSON file (the routes file's fields)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			obj, err := readDoc(args[0])
			if err != nil {
				return err
			}
			name, _ := obj["name"].(string)
			if name == "" {
				return fmt.Errorf("%s: the %s has no name", args[0], noun)
			}
			var out any
			if err := a.do(cmd.Context(), http.MethodPut, path+"/"+url.PathEscape(name), nil, obj, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.AddCommand(crud(a, path, noun)...)
	cmd.AddCommand(put)
	return cmd
}

// readDoc reads a YAML or JSON object from a file.
func readDoc(path string) (map[string]any, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file.
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("%s: not an object", path)
	}
	return obj, nil
}

// newGatewayImportCmd imports an OpenAPI 3 document as a stored API.
func newGatewayImportCmd(a *adminClient) *cobra.Command {
	var name, upstream, basePath string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import OPENAPI_FILE",
		Short: "Import an OpenAPI 3 document (with x-latch-* extensions) as a stored gateway API",
		Long: `Turn an OpenAPI 3 document's paths and operations into a gateway API stored in
the database: one route per operation, with the x-latch-* extensions for the
upstream, authentication, scopes, throttling, CORS and CEL policies
(docs/gateway.md). Errors name the JSON pointer of the offending value.
--dry-run prints the API without storing it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"name": name, "upstream": upstream, "base_path": basePath} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if dryRun {
				q.Set("dry_run", strconv.FormatBool(true))
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, a.url("/gateway/import", q), bytes.NewReader(b))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/yaml")
			req.SetBasicAuth(a.clientID, a.secret)
			resp, err := a.http.Do(req)
			if err != nil {
				return fmt.Errorf("calling the admin API: %w", err)
			}
			defer func() { _ = resp.Body.Close() }()
			data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode >= 300 {
				e := &apiError{Status: resp.StatusCode}
				if json.Unmarshal(data, e) != nil || e.Code == "" {
					e.Code, e.Message = "http_error", strings.TrimSpace(string(data))
				}
				return e
			}
			var out any
			if err := json.Unmarshal(data, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the API's name (overrides x-latch-name)")
	cmd.Flags().StringVar(&upstream, "upstream", "", "the upstream (overrides x-latch-upstream)")
	cmd.Flags().StringVar(&basePath, "base-path", "", "the base path (overrides x-latch-base-path)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the API without storing it")
	return cmd
}
