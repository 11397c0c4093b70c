package store

import (
	"context"
	"time"
)

// Link ties a local user to an identity at a federated identity provider:
// the external subject an upstream OpenID Provider or SAML IDP asserts,
// under the name of the authenticator instance that talks to it. One local
// user may hold several links (one person, several identities); an
// external identity links to at most one local user per tenant.
type Link struct {
	TenantID string
	// UserID is the local user.
	UserID string
	// IdP names the authenticator instance of the upstream provider
	// (authn.oidc_federation or authn.saml_federation), 1..128 characters.
	IdP string //nolint:revive // var-naming: spelt as SAML spells it; builtin/me reads it.
	// Subject is the upstream's stable identifier of the user (the ID
	// token's sub, the SAML NameID), 1..512 characters.
	Subject string
	// Email is the upstream's email address when the link was made, shown
	// to the user and admins; informational only.
	Email     string
	CreatedAt time.Time
}

// Links stores account links, unique per (tenant, idp, subject). Deleting
// a user deletes its links.
type Links interface {
	// CreateLink records l. It is ErrConflict when the external identity
	// is already linked (to this user or another), ErrNotFound when the
	// user does not exist. CreatedAt defaults to now.
	CreateLink(ctx context.Context, l Link) (Link, error)
	// FindLink returns the link of an external identity.
	FindLink(ctx context.Context, tenantID, idp, subject string) (Link, error)
	// ListLinks lists a user's links, ordered by idp then subject.
	ListLinks(ctx context.Context, tenantID, userID string) ([]Link, error)
	// DeleteLink removes the link of an external identity.
	DeleteLink(ctx context.Context, tenantID, idp, subject string) error
}
