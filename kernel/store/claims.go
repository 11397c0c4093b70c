package store

import (
	"context"
	"time"
)

// LocalClaim is a claim of a tenant's local dialect: the vocabulary user
// stores and applications share. URI is its name in the local dialect
// ("http://wso2.org/claims/department"), Name the short name user records
// carry it under ("department"); both name the claim wherever claims are
// mapped. The built-in local claims (kernel/claims) need no record; a
// record with a built-in URI replaces that claim's description and
// attribute mappings.
type LocalClaim struct {
	TenantID string
	// URI is the claim's URI, 1..512 bytes, unique per tenant.
	URI string
	// Name is the user attribute that holds the claim, 1..128 bytes,
	// unique per tenant.
	Name        string
	Description string
	// AttributeMappings maps a user store domain (PRIMARY, LDAP) to the
	// attribute of that store that holds the claim; a domain without an
	// entry reads the attribute Name.
	AttributeMappings map[string]string
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// ClaimMapping maps a claim of an outside dialect (oidc, scim, saml, or
// any dialect URI an operator names) to a local claim.
type ClaimMapping struct {
	TenantID string
	// Dialect names the outside dialect, 1..256 bytes.
	Dialect string
	// Claim is the claim's name in that dialect, 1..512 bytes, unique
	// per tenant and dialect.
	Claim string
	// LocalURI is the URI of the local claim it carries.
	LocalURI  string
	UpdatedAt time.Time
}

// ClaimDialects stores a tenant's local claims and its mappings of
// outside dialects, beside the built-in defaults kernel/claims provides.
type ClaimDialects interface {
	// PutLocalClaim creates or replaces the local claim with c.URI. A Name
	// taken by another claim is ErrConflict.
	PutLocalClaim(ctx context.Context, c LocalClaim) (LocalClaim, error)
	// ListLocalClaims lists a tenant's stored local claims by URI.
	ListLocalClaims(ctx context.Context, tenantID string) ([]LocalClaim, error)
	// DeleteLocalClaim removes a stored local claim and the mappings to
	// it.
	DeleteLocalClaim(ctx context.Context, tenantID, uri string) error
	// PutClaimMapping creates or replaces the mapping of (Dialect, Claim).
	PutClaimMapping(ctx context.Context, m ClaimMapping) (ClaimMapping, error)
	// ListClaimMappings lists a tenant's stored mappings, of one dialect
	// when dialect is set, ordered by dialect then claim.
	ListClaimMappings(ctx context.Context, tenantID, dialect string) ([]ClaimMapping, error)
	// DeleteClaimMapping removes the mapping of (dialect, claim).
	DeleteClaimMapping(ctx context.Context, tenantID, dialect, claim string) error
}
