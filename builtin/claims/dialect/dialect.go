// Package dialect is the claims.dialect extension: a claim mapper that
// translates claims between the local dialect and the outside dialects
// (OpenID Connect, SCIM 2.0 core and enterprise, SAML attribute names, and
// any dialect an administrator defines) through the tenant's claim
// dialect tables: the built-in defaults of kernel/claims with the
// tenant's stored local claims and mappings over them (admin API
// /claims, docs/claims.md).
//
// From the local dialect to an outside one, with a Subject that is a user
// of the tenant's stores (another subject, such as a client at the
// gateway, is left alone), the mapper reads the user from the tenant's
// user store directory: the record's
// fields, the attributes named like local claims, and the store
// attributes an administrator mapped to local claims for the user's
// domain (userstore.AttributeReader). The profile named by the request's
// claims.ProfileClaim replaces the default profile's values. Every
// mapping of the target dialect whose local claim has a value sets its
// claim; the request's other claims pass through unless drop_unmapped is
// set. From an outside dialect to the local one, mapped claims are
// renamed to their local names. Any other pair passes through unchanged.
//
// The instance asks the kernel for DepStore and, optionally, DepDirectory
// and DepCache when it is provisioned. With DepCache, a tenant's tables
// are read once and kept until its owner (the node) drops them after a
// change.
package dialect

import (
	"context"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

// ID is the module id.
const ID extension.ID = "claims.dialect"

// Names of the dependencies the instance takes from extension.Env.Dep.
const (
	// DepStore names the kernel store: a store.Store, or anything
	// implementing Tables.
	DepStore = "store"
	// DepDirectory names the tenant's user store directory
	// (*router.Router, anything implementing Directory); without it the
	// mapper translates only the claims it is given.
	DepDirectory = "userstore.directory"
	// DepCache names the node's cache of the tenants' dialect tables
	// (*Cache), optional: without it every mapping reads the tables from
	// the store.
	DepCache = "claims.dialects"
)

// ErrDependency means DepStore is missing or of the wrong type.
var ErrDependency = errors.New("missing or mistyped dependency")

//go:embed config.schema.json
var configSchema []byte

// Module returns the claims.dialect module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindClaims,
		New:          func() any { return new(Mapper) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Translate claims between the local dialect and OIDC, SCIM, SAML and custom dialects by the tenant's claim tables.",
	}
}

// Tables is what the mapper reads of the kernel store.
type Tables interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	ListLocalClaims(ctx context.Context, tenantID string) ([]store.LocalClaim, error)
	ListClaimMappings(ctx context.Context, tenantID, dialect string) ([]store.ClaimMapping, error)
}

// Directory reads users from the tenant's user stores; *router.Router
// implements it.
type Directory interface {
	Members(tenant string) []router.Member
	GetUser(ctx context.Context, tenant, id string) (router.Member, abi.User, error)
	ReadAttributes(ctx context.Context, tenant, id string, names []string) (router.Member, map[string]any, error)
	ListGroups(ctx context.Context, tenant string, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error)
}

// Mapper is a claims.dialect instance; its exported fields are its
// configuration.
type Mapper struct {
	// DropUnmapped answers only the claims the target dialect maps.
	DropUnmapped bool `json:"drop_unmapped,omitempty"`

	tables Tables
	dir    Directory
	cache  *Cache
}

// Provision takes the dependencies.
func (m *Mapper) Provision(_ context.Context, env extension.Env) error {
	d, _ := env.Dep(DepStore)
	t, ok := d.(Tables)
	if !ok {
		return fmt.Errorf("provisioning %s: %w: %q is %T, want a store.Store", ID, ErrDependency, DepStore, d)
	}
	m.tables = t
	if d, ok := env.Dep(DepDirectory); ok {
		dir, ok := d.(Directory)
		if !ok {
			return fmt.Errorf("provisioning %s: %w: %q is %T, want a *router.Router", ID, ErrDependency, DepDirectory, d)
		}
		m.dir = dir
	}
	if d, ok := env.Dep(DepCache); ok {
		c, ok := d.(*Cache)
		if !ok {
			return fmt.Errorf("provisioning %s: %w: %q is %T, want a *dialect.Cache", ID, ErrDependency, DepCache, d)
		}
		m.cache = c
	}
	return nil
}

// LocalFromStore converts stored local claims.
func LocalFromStore(lcs []store.LocalClaim) []claims.LocalClaim {
	out := make([]claims.LocalClaim, len(lcs))
	for i, c := range lcs {
		out[i] = claims.LocalClaim{URI: c.URI, Name: c.Name, Description: c.Description, AttributeMappings: c.AttributeMappings}
	}
	return out
}

// MappingsFromStore converts stored mappings.
func MappingsFromStore(cms []store.ClaimMapping) []claims.Mapping {
	out := make([]claims.Mapping, len(cms))
	for i, c := range cms {
		out[i] = claims.Mapping{Dialect: c.Dialect, Claim: c.Claim, LocalURI: c.LocalURI}
	}
	return out
}

// maxGroups bounds the groups read for the groups claim.
const maxGroups = 1000

// Map translates req.Claims; see the package documentation.
func (m *Mapper) Map(ctx context.Context, req abi.MapRequest) (abi.MapResponse, error) {
	in := req.Claims
	if in == nil {
		in = map[string]any{}
	}
	if req.From == req.To || (req.From != abi.DialectLocal && req.To != abi.DialectLocal) {
		return abi.MapResponse{Claims: in}, nil
	}
	d, err := m.cache.Load(ctx, m.tables, req.Tenant)
	if err != nil {
		return abi.MapResponse{}, fault.Unavailable.WithMessage("the claim dialects could not be read").WithCause(err)
	}
	if req.To == abi.DialectLocal {
		out := m.passThrough(in)
		maps.Copy(out, d.FromDialect(in, req.From))
		return abi.MapResponse{Claims: out}, nil
	}
	if len(d.Mappings(req.To)) == 0 {
		return abi.MapResponse{Claims: in}, nil
	}
	profile, _ := in[claims.ProfileClaim].(string)
	local := d.Canonical(in)
	delete(local, claims.ProfileClaim)
	if req.Subject != "" && m.dir != nil && len(m.dir.Members(req.Tenant)) > 0 {
		uc, err := m.userClaims(ctx, d, req.Tenant, req.Subject, profile)
		switch {
		case fault.CodeOf(err) == fault.CodeNotFound:
			// The subject is no user of the tenant's stores (a client,
			// an upstream's subject at the gateway): only the given
			// claims are translated.
		case err != nil:
			return abi.MapResponse{}, err
		default:
			maps.Copy(local, uc)
		}
	}
	out := m.passThrough(in)
	mapped := d.ToDialect(local, req.To)
	if scope, ok := in["scope"].(string); ok && req.To == abi.DialectOIDC {
		released(mapped, strings.Fields(scope))
	}
	maps.Copy(out, mapped)
	return abi.MapResponse{Claims: out}, nil
}

// oidcScopeOf names the scope that releases a standard OpenID Connect
// claim (Core 1.0 section 5.4, and "groups" for the groups claim). A claim
// not listed is released with the profile scope.
var oidcScopeOf = map[string]string{
	"email": "email", "email_verified": "email",
	"phone_number": "phone", "phone_number_verified": "phone",
	"address": "address",
	"groups":  "groups",
}

// released keeps the OpenID Connect claims the granted scopes release:
// asked for ID token or UserInfo claims (the request carries the granted
// scopes as the "scope" claim), the mapper adds no claim the client was
// not granted.
func released(claims map[string]any, scopes []string) {
	for k := range claims {
		need, ok := oidcScopeOf[k]
		if !ok {
			need = "profile"
		}
		if !slices.Contains(scopes, need) {
			delete(claims, k)
		}
	}
}

func (m *Mapper) passThrough(in map[string]any) map[string]any {
	out := map[string]any{}
	if !m.DropUnmapped {
		maps.Copy(out, in)
	}
	delete(out, claims.ProfileClaim)
	return out
}

// userClaims reads the subject's local claims from its user store.
func (m *Mapper) userClaims(ctx context.Context, d *claims.Dialects, tenant, subject, profile string) (map[string]any, error) {
	mem, u, err := m.dir.GetUser(ctx, tenant, subject)
	if err != nil {
		return nil, fmt.Errorf("reading the claims of %q: %w", subject, err)
	}
	attrs := map[string]any{}
	if names := slices.Sorted(maps.Keys(d.StoreAttributes(mem.Domain))); len(names) > 0 {
		if _, attrs, err = m.dir.ReadAttributes(ctx, tenant, subject, names); err != nil {
			return nil, fmt.Errorf("reading the mapped attributes of %q: %w", subject, err)
		}
	}
	var groups []string
	gs, err := m.dir.ListGroups(ctx, tenant, abi.ListGroupsRequest{UserID: subject, Limit: maxGroups})
	if err != nil {
		return nil, fmt.Errorf("reading the groups of %q: %w", subject, err)
	}
	for _, g := range gs.Groups {
		groups = append(groups, g.Name)
	}
	return d.UserClaims(u, mem.Domain, attrs, groups, profile), nil
}

var (
	_ claims.Mapper         = (*Mapper)(nil)
	_ extension.Provisioner = (*Mapper)(nil)
	_ Tables                = (store.Store)(nil)
	_ Directory             = (*router.Router)(nil)
)
