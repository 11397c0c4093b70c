package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/builtin/scim"
	"github.com/latchid/latch/kernel/store"
)

// scimBearer lets the SCIM service accept access tokens from the OAuth
// provider: a token the addressed tenant issued for itself (its audience
// includes the tenant's issuer), or an admin token of the default tenant,
// which administers every tenant as it does on the admin API.
type scimBearer struct {
	p  *oauth.Provider
	st store.Store
}

// ValidateSCIMToken implements scim.BearerTokens.
func (b scimBearer) ValidateSCIMToken(ctx context.Context, t store.Tenant, raw string) (scim.Principal, error) {
	info, err := b.p.ValidateAccessToken(ctx, t.ID, raw)
	switch {
	case err == nil:
		if !slices.Contains(info.Audience, b.p.Issuer(t.Name)) {
			return scim.Principal{}, fmt.Errorf("%w: audience %v does not include this tenant", scim.ErrInvalidBearer, info.Audience)
		}
		return scim.Principal{ClientID: info.ClientID, Subject: info.Subject, Scopes: info.Scopes,
			User: info.Subject != "" && info.Subject != info.ClientID}, nil
	case !errors.Is(err, oauth.ErrInvalidToken):
		return scim.Principal{}, err
	case t.Name == store.DefaultTenantName:
		return scim.Principal{}, fmt.Errorf("%w: %w", scim.ErrInvalidBearer, err)
	}
	root, rerr := b.st.GetTenantByName(ctx, store.DefaultTenantName)
	if rerr != nil {
		return scim.Principal{}, fmt.Errorf("loading the default tenant: %w", rerr)
	}
	info, err = b.p.ValidateAccessToken(ctx, root.ID, raw)
	switch {
	case errors.Is(err, oauth.ErrInvalidToken):
		return scim.Principal{}, fmt.Errorf("%w: %w", scim.ErrInvalidBearer, err)
	case err != nil:
		return scim.Principal{}, err
	case !slices.Contains(info.Audience, b.p.Issuer(store.DefaultTenantName)) || !info.HasScope(scim.ScopeAdmin):
		return scim.Principal{}, fmt.Errorf("%w: a default-tenant token needs the %s scope for another tenant", scim.ErrInvalidBearer, scim.ScopeAdmin)
	}
	return scim.Principal{ClientID: info.ClientID, Subject: info.Subject, Scopes: []string{scim.ScopeAdmin}}, nil
}

var _ scim.BearerTokens = scimBearer{}

// mountSCIM serves SCIM 2.0 at /scim2 and /t/{tenant}/scim2.
func (n *Node) mountSCIM(provider *oauth.Provider, hasher scim.PasswordHasher, passwords scim.PasswordPolicy) {
	scim.New(scim.Deps{
		Store:  n.store,
		Hasher: hasher,
		Bearer: scimBearer{p: provider, st: n.store},
		Audit:  n.bus,
		Log:    n.log,

		// The users of user store domains outside the database.
		Directory: n.extensions.outsideDatabase(),
		Passwords: passwords, // the tenants' password policies (selfservice.go)
	}).Mount(n.server.App())
}
