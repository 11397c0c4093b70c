package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
)

// issuerPrefix starts the issuer of every Entra ID v2.0 token:
// "https://login.microsoftonline.com/<tenant id>/v2.0".
const issuerPrefix = "https://login.microsoftonline.com/"

const configSchema = `{
  "type": "object",
  "properties": {
    "tenant_ids": {"type": "array", "items": {"type": "string"}},
    "group_names": {"type": "object", "additionalProperties": {"type": "string"}},
    "drop_unmapped": {"type": "boolean"},
    "upn_as_email": {"type": "boolean"}
  },
  "additionalProperties": false
}`

// config is the operator's configuration.
type config struct {
	// TenantIDs lists the Entra tenants (directory ids) whose tokens are
	// mapped; empty: every tenant. Tokens of other issuers pass through.
	TenantIDs []string `json:"tenant_ids"`
	// GroupNames maps group object ids to names; Entra sends ids only.
	// Groups without a name keep their id.
	GroupNames map[string]string `json:"group_names"`
	// DropUnmapped drops the claims this mapper does not know (token
	// plumbing such as aio, uti, rh) instead of passing them on.
	DropUnmapped bool `json:"drop_unmapped"`
	// UPNAsEmail uses the upn as the email when there is no email claim
	// (in tenants where they are the same).
	UPNAsEmail bool `json:"upn_as_email"`
}

// renames maps Entra claim names to local ones.
var renames = map[string]string{
	"oid":                "object_id",
	"tid":                "directory_id",
	"name":               "name",
	"given_name":         "given_name",
	"family_name":        "family_name",
	"email":              "email",
	"preferred_username": "username",
	"roles":              "roles",
	"wids":               "directory_roles",
	"ipaddr":             "ip_address",
	"ctry":               "country",
	"amr":                "amr",
}

// plumbing lists token claims that say nothing about the user; they are
// always dropped.
var plumbing = []string{"aio", "uti", "rh", "ver", "nbf", "exp", "iat", "iss", "aud", "nonce", "sid", "xms_tpl", "acct", "idp"}

// mapper is the claim mapper. Every request carries its instance's
// configuration, parsed once per distinct configuration.
type mapper struct {
	configs plugin.Configs[*config]
}

// Configure checks the configuration.
func (m *mapper) Configure(raw []byte) error {
	_, err := m.config(raw)
	return err
}

// config returns the parsed configuration raw.
func (m *mapper) config(raw []byte) (*config, error) {
	if m.configs.Parse == nil {
		m.configs.Parse = parseConfig
	}
	return m.configs.Get(raw)
}

// parseConfig checks and parses a configuration strictly.
func parseConfig(raw []byte) (*config, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, plugin.ErrInvalidRequest.WithMessage("configuration: " + err.Error())
	}
	for i, id := range c.TenantIDs {
		c.TenantIDs[i] = strings.ToLower(id)
	}
	return &c, nil
}

// Map translates remote Entra claims to the local dialect; any other
// request (another direction, another issuer, a tenant not listed) passes
// the claims through unchanged.
func (m *mapper) Map(req abi.MapRequest) (abi.MapResponse, error) {
	cfg, err := m.config(req.Config)
	if err != nil {
		return abi.MapResponse{}, err
	}
	tenant, ok := entraTenant(cfg, req)
	if !ok {
		return abi.MapResponse{Claims: req.Claims}, nil
	}
	out := make(map[string]any, len(req.Claims))
	for k, v := range req.Claims {
		switch {
		case slices.Contains(plumbing, k):
		case k == "groups":
			out["groups"] = groups(cfg, v)
		case k == "upn":
			out["upn"] = v
		case renames[k] != "":
			out[renames[k]] = v
		case !cfg.DropUnmapped:
			out[k] = v
		}
	}
	if _, ok := out["username"]; !ok {
		if upn, ok := req.Claims["upn"].(string); ok {
			out["username"] = upn
		}
	}
	if _, ok := out["email"]; !ok && cfg.UPNAsEmail {
		if upn, ok := req.Claims["upn"].(string); ok && strings.Contains(upn, "@") {
			out["email"] = upn
		}
	}
	out["directory_id"] = tenant
	return abi.MapResponse{Claims: out}, nil
}

// entraTenant returns the Entra tenant of a request this mapper handles.
func entraTenant(cfg *config, req abi.MapRequest) (string, bool) {
	if req.From != abi.DialectRemote || req.To != abi.DialectLocal {
		return "", false
	}
	rest, ok := strings.CutPrefix(req.Issuer, issuerPrefix)
	if !ok {
		return "", false
	}
	tenant, _, _ := strings.Cut(rest, "/")
	tenant = strings.ToLower(tenant)
	if tenant == "" || (len(cfg.TenantIDs) > 0 && !slices.Contains(cfg.TenantIDs, tenant)) {
		return "", false
	}
	return tenant, true
}

// groups names the group ids it knows.
func groups(cfg *config, v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := make([]any, len(list))
	for i, g := range list {
		id, _ := g.(string)
		if name, ok := cfg.GroupNames[id]; ok {
			out[i] = name
		} else {
			out[i] = g
		}
	}
	return out
}
