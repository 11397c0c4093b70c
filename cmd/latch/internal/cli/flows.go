package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// newAdminFlowsCmd manages versioned authentication flows
// (/api/admin/v1/flows).
func newAdminFlowsCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "flows", Short: "Manage versioned authentication flows"}
	show := func(method, path string, body any) func(cmd *cobra.Command) error {
		return func(cmd *cobra.Command) error {
			var out any
			if err := a.do(cmd.Context(), method, path, nil, body, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		}
	}
	flow := func(name string) string { return "/flows/" + url.PathEscape(name) }

	list := &cobra.Command{Use: "list", Short: "List flows (the latest version of each)", Args: cobra.NoArgs}
	q := listFlags(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		var out any
		if err := a.do(cmd.Context(), http.MethodGet, "/flows", q(nil), nil, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	get := &cobra.Command{Use: "get NAME [VERSION]", Short: "Show the latest (or one) version of a flow", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := flow(args[0])
			if len(args) == 2 {
				path += "/versions/" + url.PathEscape(args[1])
			}
			return show(http.MethodGet, path, nil)(cmd)
		}}
	versions := &cobra.Command{Use: "versions NAME", Short: "List every version of a flow, oldest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(http.MethodGet, flow(args[0])+"/versions", nil)(cmd)
		}}
	save := &cobra.Command{
		Use:   "save NAME --step OPTIONS [--step OPTIONS ...]",
		Short: "Save a new version of a flow (creating it when missing)",
		Long: `Save a new version of a flow. Each --step lists the authenticators the step
offers, comma-separated (--step password --step totp,email-otp); --script-file
adds an adaptive script.`,
		Args: cobra.ExactArgs(1),
	}
	var steps []string
	var scriptFile, comment string
	save.Flags().StringArrayVar(&steps, "step", nil, "the options of one step, comma-separated (repeatable, in order)")
	save.Flags().StringVar(&scriptFile, "script-file", "", "file holding the flow's adaptive script")
	save.Flags().StringVar(&comment, "comment", "", "why this version was saved")
	_ = save.MarkFlagRequired("step")
	save.RunE = func(cmd *cobra.Command, args []string) error {
		body := map[string]any{}
		var ss []map[string]any
		for _, s := range steps {
			var opts []string
			for _, o := range strings.Split(s, ",") {
				if o = strings.TrimSpace(o); o != "" {
					opts = append(opts, o)
				}
			}
			ss = append(ss, map[string]any{"options": opts})
		}
		body["steps"] = ss
		if scriptFile != "" {
			src, err := os.ReadFile(scriptFile) //nolint:gosec // G304: the operator names the file.
			if err != nil {
				return fmt.Errorf("reading the script: %w", err)
			}
			body["script"] = string(src)
		}
		if comment != "" {
			body["comment"] = comment
		}
		return show(http.MethodPut, flow(args[0]), body)(cmd)
	}
	rollback := &cobra.Command{Use: "rollback NAME VERSION", Short: "Save a copy of an older version as the newest", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || v < 1 {
				return fmt.Errorf("version %q: want a whole number from 1", args[1])
			}
			return show(http.MethodPost, flow(args[0])+"/rollback", map[string]any{"version": v})(cmd)
		}}
	del := &cobra.Command{Use: "delete NAME", Short: "Delete every version of a flow no client uses", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(cmd.Context(), http.MethodDelete, flow(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted flow %s\n", args[0])
			return nil
		}}
	cmd.AddCommand(list, get, versions, save, rollback, del)
	return cmd
}

// exportDoc is one document `latch export` writes.
type exportDoc struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   exportMeta     `yaml:"metadata"`
	Spec       map[string]any `yaml:"spec"`
}

type exportMeta struct {
	Name   string `yaml:"name"`
	Tenant string `yaml:"tenant,omitempty"`
}

// exportable are the kinds `latch export` writes.
var exportable = []string{kindRole, kindGroup, kindFlow, kindClient}

func newExportCmd() *cobra.Command {
	a := &adminClient{http: &http.Client{Timeout: 2 * time.Minute}}
	var kinds []string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a tenant's flows, clients, roles and groups as a YAML file for `latch apply`",
		Long: `Write the objects of one tenant as YAML documents that ` + "`latch apply`" + ` reads back
(docs/apply.md): applying the output to the same server changes nothing, and
applying it to another server copies the objects. Client secrets and user
passwords are never exported; "${" in a value is written as "$${" so that apply
does not read it as an environment variable.`,
		Args: cobra.NoArgs,
	}
	remoteFlags(cmd, a)
	cmd.Flags().StringSliceVar(&kinds, "kind", []string{kindFlow, kindClient}, "kinds to export: "+strings.Join(exportable, ", "))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		for _, k := range kinds {
			if !slices.Contains(exportable, k) {
				return fmt.Errorf("--kind %s: want one of %s", k, strings.Join(exportable, ", "))
			}
		}
		var docs []exportDoc
		for _, k := range exportable {
			if !slices.Contains(kinds, k) {
				continue
			}
			got, err := exportKind(cmd.Context(), a, k)
			if err != nil {
				return fmt.Errorf("exporting %ss: %w", strings.ToLower(k), err)
			}
			docs = append(docs, got...)
		}
		enc := yaml.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent(2)
		for _, d := range docs {
			if err := enc.Encode(d); err != nil {
				return fmt.Errorf("writing YAML: %w", err)
			}
		}
		return enc.Close()
	}
	return cmd
}

// exportKind lists one kind of object of a's tenant as documents.
func exportKind(ctx context.Context, a *adminClient, kind string) ([]exportDoc, error) {
	path := map[string]string{kindRole: "/roles", kindGroup: "/groups", kindFlow: "/flows", kindClient: "/clients"}[kind]
	key := "name"
	if kind == kindClient {
		key = "client_id"
	}
	allowed := specFields[kind]
	var docs []exportDoc
	q := url.Values{"limit": {"1000"}}
	for {
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		if err := a.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			name, _ := it[key].(string)
			if name == "" {
				return nil, errors.New("the server listed an object without a name")
			}
			spec := map[string]any{}
			for k, v := range it {
				if _, ok := allowed[k]; !ok || slices.Contains(writeOnly, k) || v == nil {
					continue
				}
				if kind == kindFlow && k == "comment" {
					continue // a comment describes a version, not the flow
				}
				spec[k] = escapeEnv(v)
			}
			if kind == kindFlow {
				spec["steps"] = normSteps(spec["steps"])
			}
			docs = append(docs, exportDoc{APIVersion: applyAPIVersion, Kind: kind,
				Metadata: exportMeta{Name: escapeEnv(name).(string), Tenant: a.tenant}, Spec: spec})
		}
		if page.NextCursor == "" {
			return docs, nil
		}
		q.Set("cursor", page.NextCursor)
	}
}

// escapeEnv writes "${" in every string of v as "$${", so that apply reads
// the value back unchanged.
func escapeEnv(v any) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "${", "$${")
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = escapeEnv(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = escapeEnv(e)
		}
		return out
	}
	return v
}
