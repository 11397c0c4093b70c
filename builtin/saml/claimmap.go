package saml

import (
	"context"
	"fmt"

	"github.com/latchid/latch/abi"
	kclaims "github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
)

// mapClaims passes a user's claims through the tenant's claim mappers
// (Deps.ClaimMappers) from the local to the saml dialect, with the user's
// id as subject (empty when the claims are a federated attribute step's,
// not the account's: see claims): the SAML attribute names the tenant's claim dialects define
// (docs/claims.md) join the claims, so that an SP's attribute mapping can
// name them. The claims are unchanged without mappers.
func (s *Service) mapClaims(ctx context.Context, t tenant, subject string, c map[string]any) (map[string]any, error) {
	if s.d.ClaimMappers == nil {
		return c, nil
	}
	for _, inst := range s.d.ClaimMappers(t.name) {
		m, ok := extension.As[kclaims.Mapper](inst)
		if !ok {
			continue
		}
		req := abi.MapRequest{Tenant: t.name, From: abi.DialectLocal, To: abi.DialectSAML, Subject: subject, Claims: c}
		if err := extension.Call(ctx, inst, abi.OpMapClaims, func(ctx context.Context) error {
			out, err := kclaims.Check(m.Map(ctx, req))
			if err == nil {
				c = out
			}
			return err
		}); err != nil {
			return nil, fmt.Errorf("mapping the assertion's claims: %w", err)
		}
	}
	return c, nil
}
