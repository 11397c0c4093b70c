package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/latchid/latch/builtin/scim"
	"github.com/latchid/latch/kernel/store"
)

// Rules decide which users and groups a provisioner receives. Every rule
// that is set must hold (they combine with "and"); no rules at all admit
// everything. A user who was pushed and no longer matches is deprovisioned
// (deleted at the target, or disabled with Deprovision "disable"); one who
// never matched is never sent.
type Rules struct {
	// Groups admits members of at least one of these groups (by name),
	// and limits the groups pushed to these.
	Groups []string `json:"groups,omitempty"`
	// Roles admits users holding at least one of these roles (by name),
	// directly or through a group.
	Roles []string `json:"roles,omitempty"`
	// Attributes admits users whose attributes equal these values, all of
	// them. Keys are user fields (username, email, display_name,
	// given_name, family_name, phone_number, enabled) or custom
	// attributes; values compare as text, case-sensitively.
	Attributes map[string]string `json:"attributes,omitempty"`
	// Filter admits users matching a SCIM 2.0 filter (RFC 7644 section
	// 3.4.2.2) over userName, displayName, name.givenName,
	// name.familyName, emails, phoneNumbers, active, groups (value: id,
	// display: name), roles (value, display: name) and
	// attributes.<name>, for example
	// `userName sw "svc-" or groups[display eq "engineering"]`.
	Filter string `json:"filter,omitempty"`
	// Deprovision is what happens at the target to a user who leaves the
	// scope: "delete" (the default) or "disable".
	Deprovision string `json:"deprovision,omitempty"`

	filter scim.Expr
}

// DepRules names the dependency through which the node hands provisioner
// instances that keep their own outbox (provision.scim) the rules set on
// the instance in the node's configuration (extensions.instances[].rules):
// a RulesFunc.
const DepRules = "provision.rules"

// RulesFunc returns the compiled rules configured for the instance of
// that name, or nil when none are.
type RulesFunc func(instance string) *Rules

// ParseRules decodes and compiles a rules object strictly: an unknown
// field, a wrong type or a bad filter is an error naming the field.
func ParseRules(raw []byte) (*Rules, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r Rules
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding rules: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding rules: more than one JSON value")
	}
	if err := r.checkBounds(); err != nil {
		return nil, err
	}
	if err := r.Compile(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Bounds of a rules object, the same as provision.scim's configuration
// schema sets on its rules.
const (
	maxRuleNames      = 100
	maxRuleNameLen    = 128
	maxRuleAttributes = 32
	maxRuleValueLen   = 1024
)

// checkBounds refuses rules over the bounds.
func (r *Rules) checkBounds() error {
	for field, names := range map[string][]string{"groups": r.Groups, "roles": r.Roles} {
		if len(names) > maxRuleNames {
			return fmt.Errorf("rules.%s: at most %d names", field, maxRuleNames)
		}
		for i, n := range names {
			if n == "" || len(n) > maxRuleNameLen {
				return fmt.Errorf("rules.%s[%d]: 1 to %d bytes", field, i, maxRuleNameLen)
			}
		}
	}
	if len(r.Attributes) > maxRuleAttributes {
		return fmt.Errorf("rules.attributes: at most %d", maxRuleAttributes)
	}
	for k, v := range r.Attributes {
		if k == "" || len(k) > maxRuleNameLen || len(v) > maxRuleValueLen {
			return fmt.Errorf("rules.attributes: names of 1 to %d bytes, values of at most %d", maxRuleNameLen, maxRuleValueLen)
		}
	}
	return nil
}

// filterAttributes are the attribute names Filter may use (lowercase).
var filterAttributes = map[string][]string{
	"id": nil, "username": nil, "displayname": nil, "active": nil,
	"name":         {"givenname", "familyname"},
	"emails":       {"value"},
	"phonenumbers": {"value"},
	"groups":       {"value", "display"},
	"roles":        {"value", "display"},
	"attributes":   nil, // any sub-attribute: a custom attribute
}

// Compile checks the rules and parses the filter. A nil *Rules is valid.
func (r *Rules) Compile() error {
	if r == nil {
		return nil
	}
	switch r.Deprovision {
	case "", "delete", "disable":
	default:
		return fmt.Errorf("rules.deprovision: want delete or disable, not %q", r.Deprovision)
	}
	if r.Filter == "" {
		return nil
	}
	if len(r.Filter) > scim.MaxFilterLength {
		return fmt.Errorf("rules.filter: at most %d bytes", scim.MaxFilterLength)
	}
	e, err := scim.ParseFilter(r.Filter)
	if err != nil {
		return fmt.Errorf("rules.filter: %w", err)
	}
	if err := checkExpr(e, ""); err != nil {
		return fmt.Errorf("rules.filter: %w", err)
	}
	r.filter = e
	return nil
}

// checkExpr refuses attributes the rules do not know; parent is the
// multi-valued attribute of a value filter.
func checkExpr(e scim.Expr, parent string) error {
	switch x := e.(type) {
	case *scim.LogExpr:
		if err := checkExpr(x.Left, parent); err != nil {
			return err
		}
		return checkExpr(x.Right, parent)
	case *scim.NotExpr:
		return checkExpr(x.X, parent)
	case *scim.AttrExpr:
		return checkPath(x.Path, parent)
	case *scim.ValuePathExpr:
		if err := checkPath(x.Path, parent); err != nil {
			return err
		}
		if parent != "" || x.Path.Sub != "" {
			return fmt.Errorf("%q: value filters do not nest", x.Path.String())
		}
		return checkExpr(x.Filter, strings.ToLower(x.Path.Name))
	}
	return fmt.Errorf("unsupported expression %q", e.String())
}

func checkPath(p scim.AttrPath, parent string) error {
	if p.URI != "" {
		return fmt.Errorf("%q: schema URNs are not supported here", p.String())
	}
	name, sub := strings.ToLower(p.Name), strings.ToLower(p.Sub)
	if parent != "" {
		if sub != "" || !slices.Contains(filterAttributes[parent], name) {
			return fmt.Errorf("%q: not a sub-attribute of %s", p.String(), parent)
		}
		return nil
	}
	subs, ok := filterAttributes[name]
	if !ok {
		return fmt.Errorf("unknown attribute %q", p.String())
	}
	if sub != "" && name != "attributes" && !slices.Contains(subs, sub) {
		return fmt.Errorf("unknown attribute %q", p.String())
	}
	if name == "attributes" && sub == "" {
		return fmt.Errorf("%q: name a custom attribute, like attributes.department", p.String())
	}
	return nil
}

func (r *Rules) disable() bool { return r != nil && r.Deprovision == "disable" }

// dependsOnMembership reports whether a group change may move users in or
// out of scope.
func (r *Rules) dependsOnMembership() bool {
	return r != nil && (len(r.Groups) > 0 || r.filter != nil)
}

// dependsOnRoles reports whether a role assignment may move users in or
// out of scope.
func (r *Rules) dependsOnRoles() bool {
	return r != nil && (len(r.Roles) > 0 || r.filter != nil)
}

// MatchGroup reports whether a group is provisioned.
func (r *Rules) MatchGroup(g store.Group) bool {
	return r == nil || len(r.Groups) == 0 || slices.Contains(r.Groups, g.Name)
}

// MatchUser reports whether a user is provisioned.
func (r *Rules) MatchUser(ctx context.Context, st store.Store, tenantID string, u store.User) (bool, error) {
	if r == nil || (len(r.Groups) == 0 && len(r.Roles) == 0 && len(r.Attributes) == 0 && r.filter == nil) {
		return true, nil
	}
	for k, want := range r.Attributes {
		if userField(u, k) != want {
			return false, nil
		}
	}
	var groups []store.Group
	if len(r.Groups) > 0 || r.filter != nil {
		var err error
		if groups, err = st.ListUserGroups(ctx, tenantID, u.ID); err != nil {
			return false, fmt.Errorf("loading the user's groups: %w", err)
		}
	}
	if len(r.Groups) > 0 && !slices.ContainsFunc(groups, func(g store.Group) bool { return slices.Contains(r.Groups, g.Name) }) {
		return false, nil
	}
	var roles []store.Role
	if len(r.Roles) > 0 || r.filter != nil {
		var err error
		if roles, err = st.ListEffectiveUserRoles(ctx, tenantID, u.ID); err != nil {
			return false, fmt.Errorf("loading the user's roles: %w", err)
		}
	}
	if len(r.Roles) > 0 && !slices.ContainsFunc(roles, func(x store.Role) bool { return slices.Contains(r.Roles, x.Name) }) {
		return false, nil
	}
	if r.filter != nil && !match(r.filter, userView(u, groups, roles)) {
		return false, nil
	}
	return true, nil
}

// userField reads a field or custom attribute as text.
func userField(u store.User, k string) string {
	switch k {
	case "username":
		return u.Username
	case "email":
		return u.Email
	case "display_name":
		return u.DisplayName
	case "given_name":
		return u.GivenName
	case "family_name":
		return u.FamilyName
	case "phone_number":
		return u.PhoneNumber
	case "enabled":
		return strconv.FormatBool(u.Enabled)
	}
	switch v := u.Attributes[k].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// userView is the user in the shape the filter sees, keys lowercase.
func userView(u store.User, groups []store.Group, roles []store.Role) map[string]any {
	m := map[string]any{
		"id": u.ID, "username": u.Username, "displayname": u.DisplayName, "active": u.Enabled,
		"name": map[string]any{"givenname": u.GivenName, "familyname": u.FamilyName},
	}
	if u.Email != "" {
		m["emails"] = []any{map[string]any{"value": u.Email}}
	}
	if u.PhoneNumber != "" {
		m["phonenumbers"] = []any{map[string]any{"value": u.PhoneNumber}}
	}
	gs := make([]any, 0, len(groups))
	for _, g := range groups {
		gs = append(gs, map[string]any{"value": g.ID, "display": g.Name})
	}
	m["groups"] = gs
	rs := make([]any, 0, len(roles))
	for _, r := range roles {
		rs = append(rs, map[string]any{"value": r.Name, "display": r.Name})
	}
	m["roles"] = rs
	attrs := map[string]any{}
	for k, v := range u.Attributes {
		attrs[strings.ToLower(k)] = v
	}
	m["attributes"] = attrs
	return m
}

// match evaluates a checked filter against a view.
func match(e scim.Expr, m map[string]any) bool {
	switch x := e.(type) {
	case *scim.LogExpr:
		if x.Op == "and" {
			return match(x.Left, m) && match(x.Right, m)
		}
		return match(x.Left, m) || match(x.Right, m)
	case *scim.NotExpr:
		return !match(x.X, m)
	case *scim.ValuePathExpr:
		items, _ := m[strings.ToLower(x.Path.Name)].([]any)
		for _, it := range items {
			if sub, ok := it.(map[string]any); ok && match(x.Filter, sub) {
				return true
			}
		}
		return false
	case *scim.AttrExpr:
		vals := values(m, x.Path)
		if x.Op == scim.OpPr {
			return slices.ContainsFunc(vals, func(v any) bool { return v != nil && v != "" })
		}
		if x.Op == scim.OpNe {
			return !slices.ContainsFunc(vals, func(v any) bool { return compare(scim.OpEq, x.Value, v) })
		}
		return slices.ContainsFunc(vals, func(v any) bool { return compare(x.Op, x.Value, v) })
	}
	return false
}

// values collects what a path names: a plain value, a sub-attribute, or
// the "value" of every item of a multi-valued attribute.
func values(m map[string]any, p scim.AttrPath) []any {
	top, ok := m[strings.ToLower(p.Name)]
	if !ok {
		return nil
	}
	sub := strings.ToLower(p.Sub)
	switch v := top.(type) {
	case map[string]any:
		if sub == "" {
			return nil
		}
		if x, ok := v[sub]; ok {
			return []any{x}
		}
		return nil
	case []any:
		if sub == "" {
			sub = "value"
		}
		var out []any
		for _, it := range v {
			if im, ok := it.(map[string]any); ok {
				if x, ok := im[sub]; ok {
					out = append(out, x)
				}
			}
		}
		return out
	default:
		if sub != "" {
			return nil
		}
		return []any{v}
	}
}

// compare applies op to a stored value v and the filter's literal.
// Strings compare case-insensitively (SCIM's default caseExact false).
func compare(op string, lit, v any) bool {
	switch l := lit.(type) {
	case string:
		s, ok := v.(string)
		if !ok {
			return false
		}
		a, b := strings.ToLower(s), strings.ToLower(l)
		switch op {
		case scim.OpEq:
			return a == b
		case scim.OpCo:
			return strings.Contains(a, b)
		case scim.OpSw:
			return strings.HasPrefix(a, b)
		case scim.OpEw:
			return strings.HasSuffix(a, b)
		case scim.OpGt:
			return a > b
		case scim.OpGe:
			return a >= b
		case scim.OpLt:
			return a < b
		case scim.OpLe:
			return a <= b
		}
	case bool:
		b, ok := v.(bool)
		return ok && op == scim.OpEq && b == l
	case json.Number:
		f, err := l.Float64()
		if err != nil {
			return false
		}
		var g float64
		switch n := v.(type) {
		case float64:
			g = n
		case int:
			g = float64(n)
		case int64:
			g = float64(n)
		case json.Number:
			if g, err = n.Float64(); err != nil {
				return false
			}
		default:
			return false
		}
		switch op {
		case scim.OpEq:
			return g == f
		case scim.OpGt:
			return g > f
		case scim.OpGe:
			return g >= f
		case scim.OpLt:
			return g < f
		case scim.OpLe:
			return g <= f
		}
	case nil:
		return op == scim.OpEq && v == nil
	}
	return false
}
