package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/latchid/latch/builtin/admin"
	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/store"
)

// adminBearer lets the admin API accept access tokens from the default
// tenant's token endpoint. The token must be meant for this server: its
// audience must include the default tenant's issuer, which is what the
// token endpoint grants when the client registered no other audience.
type adminBearer struct{ p *oauth.Provider }

// ValidateAdminToken implements admin.BearerTokens.
func (b adminBearer) ValidateAdminToken(ctx context.Context, tenantID, raw string) (string, []string, error) {
	info, err := b.p.ValidateAccessToken(ctx, tenantID, raw)
	switch {
	case errors.Is(err, oauth.ErrInvalidToken):
		return "", nil, fmt.Errorf("%w: %w", admin.ErrInvalidBearer, err)
	case err != nil:
		return "", nil, err
	}
	if !slices.Contains(info.Audience, b.p.Issuer(store.DefaultTenantName)) {
		return "", nil, fmt.Errorf("%w: audience %v does not include this server", admin.ErrInvalidBearer, info.Audience)
	}
	return info.ClientID, info.Scopes, nil
}

var _ admin.BearerTokens = adminBearer{}
