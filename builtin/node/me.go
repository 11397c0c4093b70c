package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/me"
	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/builtin/selfservice"
	"github.com/latchid/latch/kernel/store"
)

// meBearer lets the end-user API accept access tokens the addressed tenant
// issued for itself (its audience includes the tenant's issuer).
type meBearer struct{ p *oauth.Provider }

// ValidateUserToken implements me.BearerTokens.
func (b meBearer) ValidateUserToken(ctx context.Context, t store.Tenant, raw string) (me.Token, error) {
	info, err := b.p.ValidateAccessToken(ctx, t.ID, raw)
	switch {
	case errors.Is(err, oauth.ErrInvalidToken):
		return me.Token{}, fmt.Errorf("%w: %w", me.ErrInvalidBearer, err)
	case err != nil:
		return me.Token{}, err
	}
	if !slices.Contains(info.Audience, b.p.Issuer(t.Name)) {
		return me.Token{}, fmt.Errorf("%w: audience %v does not include this tenant", me.ErrInvalidBearer, info.Audience)
	}
	return me.Token{Subject: info.Subject, ClientID: info.ClientID, Scopes: info.Scopes}, nil
}

var _ me.BearerTokens = meBearer{}

// mountMe serves the end-user API at /api/me and /t/{tenant}/api/me.
// Password changes go through the tenants' password policies (passwords)
// and revoke the user's tokens at the provider, as a revoked consent does
// the client's.
func (n *Node) mountMe(provider *oauth.Provider, lg *login.Service, passwords *selfservice.Service) {
	me.New(me.Deps{
		Store:      n.store,
		Extensions: n.extensions,
		Directory:  n.extensions.directory,
		Bearer:     meBearer{p: provider},
		Browser:    lg,
		Audit:      n.bus,
		PublicURL:  n.cfg.PublicURL,
		Log:        n.log,
		Passwords:  passwords,
		Tokens:     provider,
	}).Mount(n.server.App())
}
