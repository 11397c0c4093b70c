package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchid/latch/kernel/bundle"
)

// Results of applying one document.
const (
	resultCreated   = "created"
	resultUpdated   = "updated"
	resultUnchanged = "unchanged"
)

// remoteFlags adds the admin API connection flags and --tenant to cmd.
func remoteFlags(cmd *cobra.Command, a *adminClient) {
	cmd.Flags().StringVar(&a.tenant, "tenant", envOr("LATCH_TENANT", "default"), "tenant of documents whose metadata names none")
	connectionFlags(cmd, a)
}

// connectionFlags adds the admin API connection flags (--url, --client-id,
// --client-secret) to cmd, and a check that a secret is given.
func connectionFlags(cmd *cobra.Command, a *adminClient) {
	f := cmd.Flags()
	f.StringVar(&a.base, "url", envOr("LATCH_URL", "http://127.0.0.1:8080"), "base URL of the server")
	f.StringVar(&a.clientID, "client-id", envOr("LATCH_ADMIN_CLIENT_ID", "latch-admin"), "admin client id")
	f.StringVar(&a.secret, "client-secret", os.Getenv("LATCH_ADMIN_CLIENT_SECRET"), "admin client secret")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if a.secret == "" {
			return errors.New("no admin client secret: set LATCH_ADMIN_CLIENT_SECRET or pass --client-secret")
		}
		return nil
	}
}

func newApplyCmd() *cobra.Command {
	a := &adminClient{http: &http.Client{Timeout: 2 * time.Minute}}
	var files []string
	var dryRun, prune bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make a running server match a declarative YAML file (tenants, users, groups, roles, flows, clients, bundles)",
		Long: `Apply YAML documents (kind: Tenant, Role, Group, User, Flow, Client or Bundle;
see docs/apply.md) to a running server through its admin API. Each object is
created when missing, updated when it differs and left alone otherwise; the
result of each is printed. Applying the same file twice changes nothing the
second time. Strings may refer to environment variables as ${NAME}.

Every document is checked before anything is applied. --dry-run prints what
would change without changing it. --prune also deletes the clients, flows,
groups and roles of a tenant that the files do not describe, for each kind
and tenant the files describe at least one object of. The credentials are
those of ` + "`latch admin`" + `.`,
		Args: cobra.NoArgs,
	}
	remoteFlags(cmd, a)
	cmd.Flags().StringSliceVarP(&files, "file", "f", nil, "YAML file to apply, - for standard input (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change and change nothing")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete clients, flows, groups and roles the files do not describe (in the tenants they describe such objects in)")
	_ = cmd.MarkFlagRequired("file")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		type fileDocs struct {
			dir  string
			docs []applyDoc
		}
		var all []fileDocs
		for _, f := range files {
			var data []byte
			var err error
			dir := "."
			if f == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxApplyFileBytes+1))
			} else {
				data, err = os.ReadFile(f) //nolint:gosec // G304: the operator names the file.
				dir = filepath.Dir(f)
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", f, err)
			}
			docs, err := parseApplyDocs(data, a.tenant, os.LookupEnv)
			if err != nil {
				return fmt.Errorf("%s: nothing applied:\n%w", f, err)
			}
			all = append(all, fileDocs{dir: dir, docs: docs})
		}
		out := cmd.OutOrStdout()
		counts := map[string]int{}
		for _, kind := range applyKinds {
			for fi, fd := range all {
				for _, d := range fd.docs {
					if d.Kind != kind {
						continue
					}
					ap := &applier{a: a, dir: fd.dir, dry: dryRun}
					res, detail, err := ap.apply(cmd.Context(), d)
					if err != nil {
						return fmt.Errorf("%s: %s: %w", files[fi], d, err)
					}
					counts[res]++
					line := fmt.Sprintf("%s/%s", strings.ToLower(d.Kind), d.Name)
					if d.Tenant != "" {
						line += " (tenant " + d.Tenant + ")"
					}
					verb := res
					if dryRun && res != resultUnchanged {
						verb = "would be " + res
					}
					line += ": " + verb
					if detail != "" {
						line += " (" + detail + ")"
					}
					fmt.Fprintln(out, line)
				}
			}
		}
		if prune {
			var docs []applyDoc
			for _, fd := range all {
				docs = append(docs, fd.docs...)
			}
			n, err := pruneUndescribed(cmd.Context(), a, docs, dryRun, out)
			if err != nil {
				return err
			}
			counts[resultDeleted] = n
		}
		summary := fmt.Sprintf("%d created, %d updated, %d unchanged", counts[resultCreated], counts[resultUpdated], counts[resultUnchanged])
		if prune {
			summary += fmt.Sprintf(", %d deleted", counts[resultDeleted])
		}
		fmt.Fprintf(out, "%s%s\n", summary, map[bool]string{true: " (dry run: nothing changed)"}[dryRun])
		return nil
	}
	return cmd
}

// resultDeleted is what --prune did to an object no file describes.
const resultDeleted = "deleted"

// prunable are the kinds --prune deletes, in the order it deletes them:
// clients before the flows they may name. Tenants, users and bundles are
// never pruned: deleting them loses what no file can bring back.
var prunable = []struct{ kind, path, key string }{
	{kindClient, "/clients", "client_id"},
	{kindFlow, "/flows", "name"},
	{kindGroup, "/groups", "name"},
	{kindRole, "/roles", "name"},
}

// pruneUndescribed deletes the objects of each prunable kind and tenant
// that docs describe some of, but not these, and returns how many. The
// admin client apply runs as is never deleted.
func pruneUndescribed(ctx context.Context, a *adminClient, docs []applyDoc, dry bool, out io.Writer) (int, error) {
	n := 0
	for _, p := range prunable {
		described := map[string]map[string]bool{}
		var tenants []string
		for _, d := range docs {
			if d.Kind != p.kind {
				continue
			}
			if described[d.Tenant] == nil {
				described[d.Tenant] = map[string]bool{}
				tenants = append(tenants, d.Tenant)
			}
			described[d.Tenant][d.Name] = true
		}
		for _, tenant := range tenants {
			c := *a
			c.tenant = tenant
			q := url.Values{"limit": {"1000"}}
			var doomed []map[string]any
			for {
				var page struct {
					Items      []map[string]any `json:"items"`
					NextCursor string           `json:"next_cursor"`
				}
				if err := c.do(ctx, http.MethodGet, p.path, q, nil, &page); err != nil {
					return n, fmt.Errorf("listing %ss of tenant %s to prune: %w", strings.ToLower(p.kind), tenant, err)
				}
				for _, it := range page.Items {
					name, _ := it[p.key].(string)
					if described[tenant][name] || (p.kind == kindClient && tenant == "default" && name == a.clientID) {
						continue
					}
					doomed = append(doomed, it)
				}
				if page.NextCursor == "" {
					break
				}
				q.Set("cursor", page.NextCursor)
			}
			for _, it := range doomed {
				name, _ := it[p.key].(string)
				id := name
				if p.kind != kindFlow {
					id, _ = it["id"].(string)
				}
				verb := resultDeleted
				if dry {
					verb = "would be deleted"
				} else if err := c.do(ctx, http.MethodDelete, p.path+"/"+url.PathEscape(id), nil, nil, nil); err != nil {
					return n, fmt.Errorf("pruning %s %q of tenant %s: %w", strings.ToLower(p.kind), name, tenant, err)
				}
				n++
				fmt.Fprintf(out, "%s/%s (tenant %s): %s\n", strings.ToLower(p.kind), name, tenant, verb)
			}
		}
	}
	return n, nil
}

// applier applies one document.
type applier struct {
	a   *adminClient
	dir string
	dry bool
}

// in returns a client for the document's tenant ("" is the root API).
func (ap *applier) in(tenant string) *adminClient {
	c := *ap.a
	c.tenant = tenant
	return &c
}

// apply makes the server hold d and says what it did.
func (ap *applier) apply(ctx context.Context, d applyDoc) (result, detail string, err error) {
	switch d.Kind {
	case kindFlow:
		return ap.applyFlow(ctx, d)
	case kindBundle:
		return ap.applyBundle(ctx, d)
	case kindTenant:
		return ap.applySimple(ctx, d, ap.in(""), "/tenants", "name")
	case kindRole:
		return ap.applySimple(ctx, d, ap.in(d.Tenant), "/roles", "name")
	case kindGroup:
		return ap.applySimple(ctx, d, ap.in(d.Tenant), "/groups", "name")
	case kindClient:
		return ap.applySimple(ctx, d, ap.in(d.Tenant), "/clients", "client_id")
	case kindUser:
		return ap.applyUser(ctx, d)
	}
	return "", "", fmt.Errorf("kind %s cannot be applied", d.Kind)
}

// writeOnly are spec fields the API never shows back (secrets): they are
// sent when an object is created and never compared.
var writeOnly = []string{"password", "client_secret"}

// extraFields are spec fields apply handles itself rather than send.
var extraFields = []string{"groups", "roles"}

// find returns the object of the collection whose key field is name, or
// nil.
func find(ctx context.Context, c *adminClient, path, key, name string) (map[string]any, error) {
	if path == "/tenants" {
		var out map[string]any
		err := c.do(ctx, http.MethodGet, "/tenants/"+url.PathEscape(name), nil, nil, &out)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil, nil
		}
		return out, err
	}
	q := url.Values{"limit": {"1000"}}
	if key == "username" {
		q.Set("username", name)
	}
	for {
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		if err := c.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				return nil, nil // the tenant does not exist (yet): neither does the object
			}
			return nil, err
		}
		for _, it := range page.Items {
			if s, _ := it[key].(string); s == name || (key == "username" && strings.EqualFold(s, name)) {
				return it, nil
			}
		}
		if page.NextCursor == "" {
			return nil, nil
		}
		q.Set("cursor", page.NextCursor)
	}
}

// sameJSON reports whether two values are equal once both are in JSON
// form (numbers as float64, empty and missing lists alike).
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		raw, err := json.Marshal(v)
		if err != nil {
			return v
		}
		var out any
		_ = json.Unmarshal(raw, &out)
		if l, ok := out.([]any); ok && len(l) == 0 {
			return nil
		}
		if m, ok := out.(map[string]any); ok && len(m) == 0 {
			return nil
		}
		if s, ok := out.(string); ok && s == "" {
			return nil
		}
		if b, ok := out.(bool); ok && !b {
			return nil
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// changed returns the spec fields whose value differs from the server's.
func changed(spec, current map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range spec {
		if slices.Contains(writeOnly, k) || slices.Contains(extraFields, k) {
			continue
		}
		if !sameJSON(v, current[k]) {
			out[k] = v
		}
	}
	return out
}

// sendable is the spec without the fields apply handles itself.
func sendable(spec map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range spec {
		if !slices.Contains(extraFields, k) {
			out[k] = v
		}
	}
	return out
}

// applySimple applies a tenant, role, group or client: POST when missing,
// PATCH with the fields that differ, nothing when none differ.
func (ap *applier) applySimple(ctx context.Context, d applyDoc, c *adminClient, path, key string) (string, string, error) {
	cur, err := find(ctx, c, path, key, d.Name)
	if err != nil {
		return "", "", err
	}
	if cur == nil {
		if ap.dry {
			return resultCreated, "", nil
		}
		body := sendable(d.Spec)
		body[key] = d.Name
		var out map[string]any
		if err := c.do(ctx, http.MethodPost, path, nil, body, &out); err != nil {
			return "", "", err
		}
		return resultCreated, "", nil
	}
	diff := changed(d.Spec, cur)
	if len(diff) == 0 {
		return resultUnchanged, "", nil
	}
	detail := strings.Join(sortedKeys(diff), ", ")
	if ap.dry {
		return resultUpdated, detail, nil
	}
	id, _ := cur["id"].(string)
	if err := c.do(ctx, http.MethodPatch, path+"/"+url.PathEscape(id), nil, diff, nil); err != nil {
		return "", "", err
	}
	return resultUpdated, detail, nil
}

// applyUser applies a user and makes it a member of the groups and a
// holder of the roles its spec lists (others are left alone).
func (ap *applier) applyUser(ctx context.Context, d applyDoc) (string, string, error) {
	c := ap.in(d.Tenant)
	res, detail, err := ap.applySimple(ctx, d, c, "/users", "username")
	if err != nil {
		return "", "", err
	}
	groups, _ := d.Spec["groups"].([]any)
	roles, _ := d.Spec["roles"].([]any)
	if len(groups) == 0 && len(roles) == 0 {
		return res, detail, nil
	}
	var uid string
	var have struct{ groups, roles []string }
	if u, err := find(ctx, c, "/users", "username", d.Name); err != nil {
		return "", "", err
	} else if u != nil {
		uid, _ = u["id"].(string)
		for _, p := range []struct {
			path string
			into *[]string
		}{{"/groups", &have.groups}, {"/roles", &have.roles}} {
			var l struct {
				Items []struct{ Name string } `json:"items"`
			}
			if err := c.do(ctx, http.MethodGet, "/users/"+url.PathEscape(uid)+p.path, nil, nil, &l); err != nil {
				return "", "", err
			}
			for _, it := range l.Items {
				*p.into = append(*p.into, it.Name)
			}
		}
	}
	var added []string
	for _, m := range []struct {
		kind  string
		names []any
		have  []string
		put   func(id string) string
	}{
		{"group", groups, have.groups, func(id string) string { return "/groups/" + url.PathEscape(id) + "/members/" + url.PathEscape(uid) }},
		{"role", roles, have.roles, func(id string) string { return "/roles/" + url.PathEscape(id) + "/users/" + url.PathEscape(uid) }},
	} {
		for _, n := range m.names {
			name, _ := n.(string)
			if slices.Contains(m.have, name) {
				continue
			}
			added = append(added, m.kind+" "+name)
			if ap.dry {
				continue
			}
			obj, err := find(ctx, c, "/"+m.kind+"s", "name", name)
			if err != nil {
				return "", "", err
			}
			if obj == nil {
				return "", "", fmt.Errorf("spec.%ss: %s %q does not exist in tenant %s", m.kind, m.kind, name, d.Tenant)
			}
			id, _ := obj["id"].(string)
			if err := c.do(ctx, http.MethodPut, m.put(id), nil, nil, nil); err != nil {
				return "", "", err
			}
		}
	}
	if len(added) > 0 && res == resultUnchanged {
		res = resultUpdated
	}
	if len(added) > 0 {
		detail = strings.TrimPrefix(detail+", added to "+strings.Join(added, ", "), ", ")
	}
	return res, detail, nil
}

// flowBody is the admin API's flow input from a Flow spec.
func flowBody(spec map[string]any) map[string]any {
	body := map[string]any{"steps": spec["steps"]}
	for _, k := range []string{"script", "comment"} {
		if v, ok := spec[k]; ok {
			body[k] = v
		}
	}
	return body
}

// applyFlow saves a new version of the flow when its steps or script
// differ from the latest version.
func (ap *applier) applyFlow(ctx context.Context, d applyDoc) (string, string, error) {
	c := ap.in(d.Tenant)
	path := "/flows/" + url.PathEscape(d.Name)
	var cur map[string]any
	err := c.do(ctx, http.MethodGet, path, nil, nil, &cur)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		cur = nil // no such flow, or no such tenant yet
	case err != nil:
		return "", "", err
	}
	if cur != nil && sameJSON(normSteps(d.Spec["steps"]), normSteps(cur["steps"])) && sameJSON(d.Spec["script"], cur["script"]) {
		return resultUnchanged, fmt.Sprintf("version %v", cur["version"]), nil
	}
	res := resultCreated
	if cur != nil {
		res = resultUpdated
	}
	if ap.dry {
		return res, "", nil
	}
	var out map[string]any
	if err := c.do(ctx, http.MethodPut, path, nil, flowBody(d.Spec), &out); err != nil {
		return "", "", err
	}
	return res, fmt.Sprintf("version %v", out["version"]), nil
}

// normSteps drops false flags from steps, so that a step written without
// them equals the server's.
func normSteps(v any) any {
	steps, _ := v.([]any)
	out := make([]any, 0, len(steps))
	for _, s := range steps {
		m, _ := s.(map[string]any)
		n := map[string]any{}
		for k, x := range m {
			if b, ok := x.(bool); ok && !b {
				continue
			}
			n[k] = x
		}
		out = append(out, n)
	}
	return out
}

// applyBundle installs the bundle archive the spec names, upgrades to it
// when another version is active, then settles configuration, tenants and
// whether it is enabled.
func (ap *applier) applyBundle(ctx context.Context, d applyDoc) (string, string, error) {
	c := ap.in("")
	file, _ := d.Spec["file"].(string)
	if !filepath.IsAbs(file) {
		file = filepath.Join(ap.dir, file)
	}
	archive, err := os.ReadFile(file) //nolint:gosec // G304: the operator's file names the archive.
	if err != nil {
		return "", "", fmt.Errorf("spec.file: reading the bundle: %w", err)
	}
	parsed, err := bundle.Read(archive)
	if err != nil {
		return "", "", fmt.Errorf("spec.file: %w", err)
	}
	if parsed.Manifest.Name != d.Name {
		return "", "", fmt.Errorf("spec.file: the archive holds bundle %q, not %q", parsed.Manifest.Name, d.Name)
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/bundles", nil, nil, &list); err != nil {
		return "", "", err
	}
	var active map[string]any
	for _, it := range list.Items {
		if it["name"] == d.Name && it["state"] != "previous" {
			active = it
		}
	}
	q := url.Values{}
	if g, ok := d.Spec["grants"].([]any); ok {
		q.Set("grants", joinAny(g))
	}
	if t, ok := d.Spec["tenants"].([]any); ok {
		q.Set("tenants", joinAny(t))
	}
	cfg, hasCfg := d.Spec["config"]
	if hasCfg {
		raw, err := json.Marshal(cfg)
		if err != nil {
			return "", "", fmt.Errorf("spec.config: %w", err)
		}
		q.Set("config", string(raw))
	}
	version := parsed.Manifest.Version
	var res string
	var changes []string
	switch {
	case active == nil:
		res = resultCreated
		if !ap.dry {
			var out map[string]any
			if err := c.sendArchive(ctx, http.MethodPost, "/bundles", q, archive, &out); err != nil {
				return "", "", err
			}
			active = out
		}
	case active["version"] != version:
		res = resultUpdated
		changes = append(changes, fmt.Sprintf("version %v to %s", active["version"], version))
		if !ap.dry {
			var out map[string]any
			if err := c.sendArchive(ctx, http.MethodPut, "/bundles/"+url.PathEscape(d.Name), q, archive, &out); err != nil {
				return "", "", err
			}
			active = out
		}
	default:
		res = resultUnchanged
		patch := map[string]any{}
		if hasCfg && !sameJSON(cfg, active["config"]) {
			patch["config"] = cfg
		}
		if t, ok := d.Spec["tenants"].([]any); ok && !sameJSON(t, active["tenants"]) {
			patch["tenants"] = t
		}
		if g, ok := d.Spec["grants"].([]any); ok && !sameJSON(g, active["grants"]) {
			return "", "", fmt.Errorf("spec.grants: grants change with a new version of the bundle (%s is installed)", version)
		}
		if len(patch) > 0 {
			res = resultUpdated
			changes = append(changes, sortedKeys(patch)...)
			if !ap.dry {
				if err := c.do(ctx, http.MethodPatch, "/bundles/"+url.PathEscape(d.Name), nil, patch, &active); err != nil {
					return "", "", err
				}
			}
		}
	}
	if want, ok := d.Spec["enabled"].(bool); ok && active != nil {
		state, _ := active["state"].(string)
		if (state == "enabled") != want {
			action := map[bool]string{true: "enable", false: "disable"}[want]
			changes = append(changes, action+"d")
			if res == resultUnchanged {
				res = resultUpdated
			}
			if !ap.dry {
				if err := c.do(ctx, http.MethodPost, "/bundles/"+url.PathEscape(d.Name)+"/"+action, nil, nil, nil); err != nil {
					return "", "", err
				}
			}
		}
	}
	return res, strings.Join(changes, ", "), nil
}

func joinAny(vs []any) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i], _ = v.(string)
	}
	return strings.Join(s, ",")
}
