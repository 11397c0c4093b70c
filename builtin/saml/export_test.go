package saml

import (
	"context"
	"crypto"
)

// SigningKey is the signer the IdP signs the tenant's messages with, for
// the external tests.
func (s *Service) SigningKey(ctx context.Context, tenantID, tenantName string) (crypto.Signer, error) {
	k, err := s.key(ctx, tenant{id: tenantID, name: tenantName})
	if err != nil {
		return nil, err
	}
	return k.signer, nil
}
