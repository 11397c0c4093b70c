package oauth

import (
	"context"
	"fmt"
)

// RevokeUserTokens revokes the refresh and access tokens the tenant issued
// to the user: every client's, or only clientID's when it is not empty.
// It returns how many tokens it revoked. A password change, a password
// recovery and a revoked consent call it, so that what the old password or
// the consent let an application hold stops working at once (the
// token endpoint answers invalid_grant for a revoked refresh token, and
// introspection and the APIs refuse a revoked access token).
func (p *Provider) RevokeUserTokens(ctx context.Context, tenantID, userID, clientID string) (int, error) {
	if userID == "" {
		return 0, nil
	}
	total := 0
	for _, kind := range []string{kindRefresh, kindAccess} {
		n, err := p.d.Store.DeactivateBySubject(ctx, tenantID, kind, userID, clientID)
		if err != nil {
			return total, fmt.Errorf("revoking the user's %s tokens: %w", kind, err)
		}
		total += n
	}
	return total, nil
}
