package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchid/latch/builtin/saml"
)

// newAdminSAMLCmd manages SAML service providers, which are clients whose
// client_id is the SP's entity ID and whose settings.saml holds their
// configuration (docs/saml.md), through the admin API's /clients routes.
func newAdminSAMLCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "saml", Short: "Manage SAML service providers"}

	register := &cobra.Command{Use: "register", Short: "Register a service provider from its metadata (file or URL)", Args: cobra.NoArgs}
	file := register.Flags().String("metadata-file", "", "the SP's metadata document")
	mdURL := register.Flags().String("metadata-url", "", "where the server fetches the SP's metadata (public addresses only)")
	name := register.Flags().String("name", "", "display name (default: the entity ID)")
	attrs := register.Flags().StringSlice("attribute", nil, "NAME=CLAIM: release claim CLAIM as SAML attribute NAME (repeatable)")
	nameIDFormat := register.Flags().String("name-id-format", "", "default NameID format: persistent, transient, emailAddress or unspecified")
	register.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if (*file == "") == (*mdURL == "") {
			return errors.New("give --metadata-file or --metadata-url")
		}
		settings := map[string]any{}
		var doc []byte
		var err error
		if *file != "" {
			if doc, err = os.ReadFile(*file); err != nil {
				return err
			}
			settings["metadata_xml"] = string(doc)
		} else {
			// The entity ID is in the document: fetch it through the same
			// SSRF guard the server uses, which fetches it again itself.
			if doc, err = saml.FetchSPMetadata(ctx, *mdURL); err != nil {
				return err
			}
			settings["metadata_url"] = *mdURL
		}
		entityID, err := saml.SPMetadataEntityID(doc)
		if err != nil {
			return fmt.Errorf("the SP metadata: %w", err)
		}
		if len(*attrs) > 0 {
			m, err := attributeFlags(*attrs)
			if err != nil {
				return err
			}
			settings["attributes"] = m
		}
		if *nameIDFormat != "" {
			settings["name_id_format"] = *nameIDFormat
		}
		display := *name
		if display == "" {
			display = entityID
		}
		var out map[string]any
		if err := a.do(ctx, http.MethodPost, "/clients", nil, map[string]any{
			"client_id": entityID, "name": display, "enabled": true, "settings": map[string]any{"saml": settings},
		}, &out); err != nil {
			return err
		}
		delete(out, "client_secret") // an SP authenticates by signature, not with a secret
		return printJSON(cmd.OutOrStdout(), spView(out))
	}

	list := &cobra.Command{Use: "list", Short: "List the service providers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sps, err := listSPs(cmd.Context(), a)
			if err != nil {
				return err
			}
			out := make([]map[string]any, 0, len(sps))
			for _, c := range sps {
				out = append(out, spView(c))
			}
			return printJSON(cmd.OutOrStdout(), out)
		}}

	show := &cobra.Command{Use: "show ENTITY_ID", Short: "Show one service provider", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := findSP(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), c)
		}}

	del := &cobra.Command{Use: "delete ENTITY_ID", Short: "Delete a service provider", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := findSP(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			if err := a.do(cmd.Context(), http.MethodDelete, "/clients/"+url.PathEscape(fmt.Sprint(c["id"])), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted service provider %s\n", args[0])
			return nil
		}}

	attributes := &cobra.Command{Use: "attributes ENTITY_ID", Short: "Change which claims a service provider receives as attributes", Args: cobra.ExactArgs(1)}
	set := attributes.Flags().StringSlice("set", nil, "NAME=CLAIM: release claim CLAIM as attribute NAME (repeatable)")
	unset := attributes.Flags().StringSlice("unset", nil, "NAME: stop releasing attribute NAME (repeatable)")
	reset := attributes.Flags().Bool("reset", false, "drop the list first (an empty list releases the defaults)")
	attributes.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(*set) == 0 && len(*unset) == 0 && !*reset {
			return errors.New("nothing to change: pass --set, --unset or --reset")
		}
		c, err := findSP(ctx, a, args[0])
		if err != nil {
			return err
		}
		settings, _ := c["settings"].(map[string]any)
		cfg, _ := settings["saml"].(map[string]any)
		m, _ := cfg["attributes"].(map[string]any)
		if m == nil || *reset {
			m = map[string]any{}
		}
		add, err := attributeFlags(*set)
		if err != nil {
			return err
		}
		for k, v := range add {
			m[k] = v
		}
		for _, k := range *unset {
			delete(m, k)
		}
		if len(m) == 0 {
			delete(cfg, "attributes")
		} else {
			cfg["attributes"] = m
		}
		var out map[string]any
		if err := a.do(ctx, http.MethodPatch, "/clients/"+url.PathEscape(fmt.Sprint(c["id"])), nil, map[string]any{"settings": settings}, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), spView(out))
	}
	cmd.AddCommand(register, list, show, del, attributes)
	return cmd
}

// attributeFlags reads NAME=CLAIM pairs.
func attributeFlags(kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q: want NAME=CLAIM", kv)
		}
		m[k] = v
	}
	return m, nil
}

// listSPs pages through the clients and keeps those with settings.saml.
func listSPs(ctx context.Context, a *adminClient) ([]map[string]any, error) {
	var sps []map[string]any
	q := url.Values{"limit": {"1000"}}
	for {
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		if err := a.do(ctx, http.MethodGet, "/clients", q, nil, &page); err != nil {
			return nil, err
		}
		for _, c := range page.Items {
			if s, ok := c["settings"].(map[string]any); ok && s["saml"] != nil {
				sps = append(sps, c)
			}
		}
		if page.NextCursor == "" {
			return sps, nil
		}
		q.Set("cursor", page.NextCursor)
	}
}

// findSP finds a service provider by entity ID (or by its client's id).
func findSP(ctx context.Context, a *adminClient, ref string) (map[string]any, error) {
	sps, err := listSPs(ctx, a)
	if err != nil {
		return nil, err
	}
	for _, c := range sps {
		if c["client_id"] == ref || c["id"] == ref {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no service provider %q", ref)
}

// spView is the summary of an SP the list and change commands print.
func spView(c map[string]any) map[string]any {
	settings, _ := c["settings"].(map[string]any)
	cfg, _ := settings["saml"].(map[string]any)
	v := map[string]any{"id": c["id"], "entity_id": c["client_id"], "name": c["name"], "enabled": c["enabled"]}
	if u, ok := cfg["metadata_url"]; ok {
		v["metadata_url"] = u
	}
	if _, ok := cfg["metadata_xml"]; ok {
		v["metadata"] = "inline"
	}
	if m, ok := cfg["attributes"].(map[string]any); ok {
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		attrs := make([]string, 0, len(names))
		for _, k := range names {
			attrs = append(attrs, fmt.Sprintf("%s=%v", k, m[k]))
		}
		v["attributes"] = attrs
	}
	return v
}
