package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// newAdminClaimsCmd mirrors the admin API's /claims routes: the local
// claim dialect and the mappings of outside dialects (docs/claims.md).
func newAdminClaimsCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "claims", Short: "Manage local claims and claim dialect mappings"}
	show := func(method, path string, q url.Values, in any) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			var out any
			if err := a.do(cmd.Context(), method, path, q, in, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		}
	}
	local := &cobra.Command{Use: "local", Short: "List the local claims (built-in and stored)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(http.MethodGet, "/claims/local", nil, nil)(cmd, args)
		}}

	setLocal := &cobra.Command{Use: "set-local URI NAME", Short: "Create or replace a local claim", Args: cobra.ExactArgs(2)}
	description := setLocal.Flags().String("description", "", "what the claim holds")
	attrs := setLocal.Flags().StringSlice("attribute", nil, "DOMAIN=ATTRIBUTE: the user store attribute holding the claim in a domain (repeatable)")
	setLocal.RunE = func(cmd *cobra.Command, args []string) error {
		mappings := map[string]string{}
		for _, kv := range *attrs {
			d, attr, ok := strings.Cut(kv, "=")
			if !ok || d == "" || attr == "" {
				return fmt.Errorf("--attribute %q: want DOMAIN=ATTRIBUTE", kv)
			}
			mappings[d] = attr
		}
		in := map[string]any{"uri": args[0], "name": args[1], "description": *description, "attribute_mappings": mappings}
		return show(http.MethodPut, "/claims/local", nil, in)(cmd, args)
	}

	deleteLocal := &cobra.Command{Use: "delete-local URI", Short: "Delete a stored local claim and the mappings to it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd.Context(), http.MethodDelete, "/claims/local", url.Values{"uri": {args[0]}}, nil, nil)
		}}
	dialects := &cobra.Command{Use: "dialects", Short: "List the outside dialects", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(http.MethodGet, "/claims/dialects", nil, nil)(cmd, args)
		}}
	mappings := &cobra.Command{Use: "mappings DIALECT", Short: "List one dialect's mappings to local claims", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(http.MethodGet, "/claims/dialects/"+url.PathEscape(args[0]), nil, nil)(cmd, args)
		}}
	mapCmd := &cobra.Command{Use: "map DIALECT CLAIM LOCAL_CLAIM", Short: "Map a claim of an outside dialect to a local claim (URI or name)", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := map[string]any{"claim": args[1], "local_claim": args[2]}
			return show(http.MethodPut, "/claims/dialects/"+url.PathEscape(args[0]), nil, in)(cmd, args)
		}}
	unmap := &cobra.Command{Use: "unmap DIALECT CLAIM", Short: "Delete a stored mapping of an outside dialect", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd.Context(), http.MethodDelete, "/claims/dialects/"+url.PathEscape(args[0]), url.Values{"claim": {args[1]}}, nil, nil)
		}}
	cmd.AddCommand(local, setLocal, deleteLocal, dialects, mappings, mapCmd, unmap)
	return cmd
}

// newAdminUserStoresCmd mirrors GET /userstores.
func newAdminUserStoresCmd(a *adminClient) *cobra.Command {
	return &cobra.Command{
		Use: "userstores", Short: "List the tenant's user store domains in search order", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out any
			if err := a.do(cmd.Context(), http.MethodGet, "/userstores", nil, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
}
