package selfservice

import (
	"context"
	"fmt"
)

// TokenRevoker revokes the OAuth tokens a tenant issued to a user
// (builtin/oauth's Provider implements it).
type TokenRevoker interface {
	// RevokeUserTokens revokes the user's refresh and access tokens,
	// every client's when clientID is empty, and returns how many.
	RevokeUserTokens(ctx context.Context, tenantID, userID, clientID string) (int, error)
}

// UseTokens makes every password change that ends the user's sessions
// (recovery, the change a login requires, SetPassword with revoke) also
// revoke the OAuth tokens issued to the user, as an SSO session is not
// all the old password let others hold. The node calls it once, before
// serving.
func (s *Service) UseTokens(r TokenRevoker) { s.tokens = r }

// RevokeTokens revokes the OAuth refresh and access tokens issued to the
// user, when the node gave the service a TokenRevoker, and returns how
// many it revoked.
func (s *Service) RevokeTokens(ctx context.Context, tenantID, userID string) (int, error) {
	if s.tokens == nil {
		return 0, nil
	}
	n, err := s.tokens.RevokeUserTokens(ctx, tenantID, userID, "")
	if err != nil {
		return n, fmt.Errorf("revoking the user's tokens: %w", err)
	}
	return n, nil
}
