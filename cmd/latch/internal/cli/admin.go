package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// adminClient talks to a running server's admin REST API.
type adminClient struct {
	base     string // e.g. http://127.0.0.1:8080
	tenant   string
	clientID string
	secret   string
	http     *http.Client
}

// apiError is the admin API's error body.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

func (a *adminClient) url(path string, q url.Values) string {
	prefix := ""
	if a.tenant != "" && a.tenant != "default" {
		prefix = "/t/" + url.PathEscape(a.tenant)
	}
	u := strings.TrimRight(a.base, "/") + prefix + "/api/admin/v1" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// do sends one request and decodes a JSON answer into out (when non-nil).
func (a *adminClient) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url(path, q), rd)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(a.clientID, a.secret)
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling the admin API: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = "http_error", strings.TrimSpace(string(data))
		}
		return e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding the admin API's answer: %w", err)
		}
	}
	return nil
}

func newAdminCmd() *cobra.Command {
	a := &adminClient{http: &http.Client{Timeout: 30 * time.Second}}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer a running server through its admin API",
		Long: `Administer a running Latch server through its admin REST API.

Credentials are those of an admin client (the bootstrap client is latch-admin):
--client-id / LATCH_ADMIN_CLIENT_ID and --client-secret / LATCH_ADMIN_CLIENT_SECRET.
The server is --url / LATCH_URL (default http://127.0.0.1:8080).`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.secret == "" {
				return errors.New("no admin client secret: set LATCH_ADMIN_CLIENT_SECRET or pass --client-secret")
			}
			return nil
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.base, "url", envOr("LATCH_URL", "http://127.0.0.1:8080"), "base URL of the server")
	pf.StringVar(&a.tenant, "tenant", envOr("LATCH_TENANT", "default"), "tenant to act on")
	pf.StringVar(&a.clientID, "client-id", envOr("LATCH_ADMIN_CLIENT_ID", "latch-admin"), "admin client id")
	pf.StringVar(&a.secret, "client-secret", os.Getenv("LATCH_ADMIN_CLIENT_SECRET"), "admin client secret")
	cmd.AddCommand(newAdminUsersCmd(a), newAdminClientsCmd(a), newAdminTenantsCmd(a), newAdminGroupsCmd(a), newAdminRolesCmd(a),
		newAdminExtensionsCmd(a), newAdminAuditCmd(a))
	cmd.AddCommand(newAdminFlowsCmd(a))
	cmd.AddCommand(newAdminClaimsCmd(a), newAdminUserStoresCmd(a))
	cmd.AddCommand(newAdminProvisioningCmd(a))
	cmd.AddCommand(newAdminSAMLCmd(a))
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// printJSON writes v indented, for people and for jq alike.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listFlags adds --limit and --cursor to cmd and returns a function that
// adds them to a query.
func listFlags(cmd *cobra.Command) func(url.Values) url.Values {
	var limit int
	var cursor string
	cmd.Flags().IntVar(&limit, "limit", 0, "page size (1-1000; default 100)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "cursor from a previous page's next_cursor")
	return func(q url.Values) url.Values {
		if q == nil {
			q = url.Values{}
		}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		return q
	}
}

// filters turns the filter flags a list command defines and the user set
// into query parameters.
func filters(cmd *cobra.Command) url.Values {
	q := url.Values{}
	for _, name := range []string{"username", "email"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			q.Set(name, f.Value.String())
		}
	}
	return q
}

// crud builds list/get/delete subcommands shared by every resource.
func crud(a *adminClient, path, noun string) []*cobra.Command {
	list := &cobra.Command{Use: "list", Short: "List " + noun + "s", Args: cobra.NoArgs}
	q := listFlags(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		var out any
		if err := a.do(cmd.Context(), http.MethodGet, path, q(filters(cmd)), nil, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	get := &cobra.Command{
		Use: "get ID", Short: "Show one " + noun, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out any
			if err := a.do(cmd.Context(), http.MethodGet, path+"/"+url.PathEscape(args[0]), nil, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a " + noun, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(cmd.Context(), http.MethodDelete, path+"/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s %s\n", noun, args[0])
			return nil
		},
	}
	return []*cobra.Command{list, get, del}
}

// body collects the flags a user set into a JSON object, so that an update
// sends only what changed.
type body struct {
	cmd    *cobra.Command
	fields map[string]func() any
}

func newBody(cmd *cobra.Command) *body { return &body{cmd: cmd, fields: map[string]func() any{}} }

func (b *body) str(flag, field, usage string) {
	v := b.cmd.Flags().String(flag, "", usage)
	b.fields[flag] = func() any { return map[string]any{field: *v} }
}

func (b *body) boolean(flag, field, usage string) {
	v := b.cmd.Flags().Bool(flag, false, usage)
	b.fields[flag] = func() any { return map[string]any{field: *v} }
}

func (b *body) strs(flag, field, usage string) {
	v := b.cmd.Flags().StringSlice(flag, nil, usage)
	b.fields[flag] = func() any { return map[string]any{field: *v} }
}

// build returns the fields of the flags that were set.
func (b *body) build() map[string]any {
	out := map[string]any{}
	for flag, f := range b.fields {
		if b.cmd.Flags().Changed(flag) {
			for k, v := range f().(map[string]any) {
				out[k] = v
			}
		}
	}
	return out
}

func newAdminUsersCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage users"}
	subs := crud(a, "/users", "user")
	subs[0].Flags().String("username", "", "show only the user with this username")
	subs[0].Flags().String("email", "", "show only users with this email address")

	userFields := func(c *cobra.Command) *body {
		b := newBody(c)
		b.str("username", "username", "username")
		b.str("email", "email", "email address")
		b.boolean("email-verified", "email_verified", "whether the email address is verified")
		b.str("phone", "phone_number", "phone number")
		b.str("display-name", "display_name", "display name")
		b.str("given-name", "given_name", "given name")
		b.str("family-name", "family_name", "family name")
		b.boolean("enabled", "enabled", "whether the account may sign in")
		return b
	}
	passwordStdin := func(c *cobra.Command) *bool {
		c.Flags().String("password", "", "password (prefer --password-stdin: flags show in the process list)")
		return c.Flags().Bool("password-stdin", false, "read the password from the first line of standard input")
	}
	readPassword := func(c *cobra.Command, fromStdin bool, into map[string]any) error {
		if fromStdin {
			line, err := readLine(c.InOrStdin())
			if err != nil {
				return fmt.Errorf("reading password from stdin: %w", err)
			}
			into["password"] = line
		} else if c.Flags().Changed("password") {
			pw, _ := c.Flags().GetString("password")
			into["password"] = pw
		}
		return nil
	}

	create := &cobra.Command{Use: "create", Short: "Create a user", Args: cobra.NoArgs}
	cb := userFields(create)
	cStdin := passwordStdin(create)
	_ = create.MarkFlagRequired("username")
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		in := cb.build()
		if err := readPassword(cmd, *cStdin, in); err != nil {
			return err
		}
		var out any
		if err := a.do(cmd.Context(), http.MethodPost, "/users", nil, in, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}

	update := &cobra.Command{Use: "update ID", Short: "Change a user (only the flags given)", Args: cobra.ExactArgs(1)}
	ub := userFields(update)
	uStdin := passwordStdin(update)
	update.RunE = func(cmd *cobra.Command, args []string) error {
		in := ub.build()
		if err := readPassword(cmd, *uStdin, in); err != nil {
			return err
		}
		if len(in) == 0 {
			return errors.New("nothing to change: pass at least one field flag")
		}
		var out any
		if err := a.do(cmd.Context(), http.MethodPatch, "/users/"+url.PathEscape(args[0]), nil, in, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	cmd.AddCommand(append(subs, create, update)...)
	cmd.AddCommand(newUserSuspendCmds(a)...)
	return cmd
}

func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for b.Len() < 4096 {
		n, err := r.Read(buf)
		if n > 0 {
			if buf[0] == '\n' {
				break
			}
			b.WriteByte(buf[0])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return strings.TrimRight(b.String(), "\r"), nil
}

func newAdminClientsCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "clients", Short: "Manage clients (applications)"}
	fields := func(c *cobra.Command) *body {
		b := newBody(c)
		b.str("name", "name", "display name")
		b.boolean("public", "public", "a public client (no secret; PKCE)")
		b.boolean("first-party", "first_party", "skip the consent page")
		b.strs("redirect-uri", "redirect_uris", "allowed redirect URI (repeatable)")
		b.strs("grant-type", "grant_types", "allowed grant type (repeatable)")
		b.strs("response-type", "response_types", "allowed response type (repeatable)")
		b.strs("scope", "scopes", "allowed scope (repeatable)")
		b.strs("audience", "audience", "allowed audience (repeatable)")
		b.str("auth-method", "token_endpoint_auth_method", "token endpoint auth method: client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt, tls_client_auth, self_signed_tls_client_auth or none")
		b.boolean("enabled", "enabled", "whether the client may be used")
		return b
	}
	create := &cobra.Command{Use: "create", Short: "Register a client; its secret is printed once", Args: cobra.NoArgs}
	cb := fields(create)
	cb.str("client-id", "client_id", "client_id to use (default: generated)")
	cb.str("client-secret", "client_secret", "client_secret to use, at least 32 characters (default: generated)")
	certFiles := create.Flags().StringSlice("tls-cert-file", nil, "PEM certificate the client authenticates with (self_signed_tls_client_auth), registered in settings.jwks (repeatable)")
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		in := cb.build()
		if len(*certFiles) > 0 {
			jwks, err := certJWKS(*certFiles)
			if err != nil {
				return err
			}
			in["settings"] = map[string]any{"jwks": jwks}
		}
		var out any
		if err := a.do(cmd.Context(), http.MethodPost, "/clients", nil, in, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	update := &cobra.Command{Use: "update ID", Short: "Change a client (only the flags given)", Args: cobra.ExactArgs(1)}
	ub := fields(update)
	update.RunE = func(cmd *cobra.Command, args []string) error {
		in := ub.build()
		if len(in) == 0 {
			return errors.New("nothing to change: pass at least one field flag")
		}
		var out any
		if err := a.do(cmd.Context(), http.MethodPatch, "/clients/"+url.PathEscape(args[0]), nil, in, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	rotate := &cobra.Command{
		Use: "rotate-secret ID", Short: "Replace a client's secret with a new generated one, printed once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out any
			if err := a.do(cmd.Context(), http.MethodPost, "/clients/"+url.PathEscape(args[0])+"/secret", nil, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.AddCommand(append(crud(a, "/clients", "client"), create, update, rotate)...)
	return cmd
}

func newAdminTenantsCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "tenants", Short: "Manage tenants"}
	create := &cobra.Command{Use: "create NAME", Short: "Create a tenant (served under /t/NAME)", Args: cobra.ExactArgs(1)}
	cb := newBody(create)
	cb.str("display-name", "display_name", "display name")
	create.RunE = func(cmd *cobra.Command, args []string) error {
		in := cb.build()
		in["name"] = args[0]
		var out any
		root := *a
		root.tenant = ""
		if err := root.do(cmd.Context(), http.MethodPost, "/tenants", nil, in, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	subs := crud(a, "/tenants", "tenant")
	for _, s := range subs {
		run := s.RunE
		s.RunE = func(cmd *cobra.Command, args []string) error {
			saved := a.tenant
			a.tenant = "" // tenants live at the root API
			defer func() { a.tenant = saved }()
			return run(cmd, args)
		}
	}
	cmd.AddCommand(append(subs, create)...)
	return cmd
}

func newAdminGroupsCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "Manage groups"}
	create := &cobra.Command{Use: "create NAME", Short: "Create a group", Args: cobra.ExactArgs(1)}
	cb := newBody(create)
	cb.str("description", "description", "description")
	create.RunE = func(cmd *cobra.Command, args []string) error {
		in := cb.build()
		in["name"] = args[0]
		var out any
		if err := a.do(cmd.Context(), http.MethodPost, "/groups", nil, in, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	add := &cobra.Command{
		Use: "add-member GROUP_ID USER_ID", Short: "Add a user to a group", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd.Context(), http.MethodPut, "/groups/"+url.PathEscape(args[0])+"/members/"+url.PathEscape(args[1]), nil, nil, nil)
		},
	}
	remove := &cobra.Command{
		Use: "remove-member GROUP_ID USER_ID", Short: "Remove a user from a group", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd.Context(), http.MethodDelete, "/groups/"+url.PathEscape(args[0])+"/members/"+url.PathEscape(args[1]), nil, nil, nil)
		},
	}
	cmd.AddCommand(append(crud(a, "/groups", "group"), create, add, remove)...)
	return cmd
}

func newAdminRolesCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "roles", Short: "Manage roles"}
	create := &cobra.Command{Use: "create NAME", Short: "Create a role", Args: cobra.ExactArgs(1)}
	cb := newBody(create)
	cb.str("description", "description", "description")
	cb.strs("permission", "permissions", "permission (repeatable)")
	create.RunE = func(cmd *cobra.Command, args []string) error {
		in := cb.build()
		in["name"] = args[0]
		var out any
		if err := a.do(cmd.Context(), http.MethodPost, "/roles", nil, in, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	assign := &cobra.Command{
		Use: "assign ROLE_ID (user|group) ID", Short: "Assign a role to a user or group", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := subjectPath(args[1])
			if err != nil {
				return err
			}
			return a.do(cmd.Context(), http.MethodPut, "/roles/"+url.PathEscape(args[0])+"/"+kind+"/"+url.PathEscape(args[2]), nil, nil, nil)
		},
	}
	unassign := &cobra.Command{
		Use: "unassign ROLE_ID (user|group) ID", Short: "Take a role from a user or group", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := subjectPath(args[1])
			if err != nil {
				return err
			}
			return a.do(cmd.Context(), http.MethodDelete, "/roles/"+url.PathEscape(args[0])+"/"+kind+"/"+url.PathEscape(args[2]), nil, nil, nil)
		},
	}
	cmd.AddCommand(append(crud(a, "/roles", "role"), create, assign, unassign)...)
	return cmd
}

func newAdminExtensionsCmd(a *adminClient) *cobra.Command {
	return &cobra.Command{
		Use:   "extensions",
		Short: "List extension modules, loaded instances with their health, and the tenant's enabled instances",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out any
			if err := a.do(cmd.Context(), http.MethodGet, "/extensions", nil, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
}

func newAdminAuditCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Query the audit log, newest first", Args: cobra.NoArgs}
	q := listFlags(cmd)
	filters := map[string]*string{}
	for _, f := range []string{"actor", "action", "target", "outcome", "since", "until"} {
		filters[f] = cmd.Flags().String(f, "", "filter by "+f+map[bool]string{true: " (RFC 3339 time)", false: ""}[f == "since" || f == "until"])
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		v := url.Values{}
		for k, p := range filters {
			if *p != "" {
				v.Set(k, *p)
			}
		}
		var out any
		if err := a.do(cmd.Context(), http.MethodGet, "/audit", q(v), nil, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	return cmd
}

func subjectPath(kind string) (string, error) {
	switch kind {
	case "user", "users":
		return "users", nil
	case "group", "groups":
		return "groups", nil
	}
	return "", fmt.Errorf("subject kind %q: want user or group", kind)
}
