package oauth

import (
	"context"
	"fmt"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

// protocolClaims are the ID token and UserInfo claims a claim mapper may
// not set or change: they are the protocol's own (OpenID Connect Core 1.0
// sections 2 and 5.3.2).
var protocolClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"auth_time": true, "nonce": true, "acr": true, "amr": true, "azp": true, "at_hash": true,
	"c_hash": true, "sid": true, "scope": true, "client_id": true, "cnf": true,
}

// releasedClaims returns the claims of u that the granted scopes release
// (userClaims), passed through the tenant's claim mappers (the claims
// extension kind) from the local to the oidc dialect. The mappers see the
// granted scopes as the space-separated "scope" claim and the subject as
// "sub", so that they can add or change claims per scope; what they return
// under protocolClaims is dropped. The ID token and the UserInfo endpoint
// release the same claims. A non-empty profile (the client's
// claims.ClientSettingProfile) reaches the mappers as claims.ProfileClaim,
// so that the claim dialect mapper builds the claims from that profile of
// the user.
//
// attrs, when not nil, are the attributes the login released from a
// federated attribute step (login.Attributes): they replace u's profile
// and attributes (login.WithAttributes), and the mappers are asked without
// a subject, so that they translate these claims rather than read the
// account's from its user store.
func (p *Provider) releasedClaims(ctx context.Context, t tenantInfo, u store.User, attrs map[string]any, scopes fosite.Arguments, profile string) (map[string]any, error) {
	u = login.WithAttributes(u, attrs)
	out := userClaims(u, scopes)
	if p.d.Extensions == nil {
		return out, nil
	}
	chain := p.d.Extensions.Enabled(t.name, extension.KindClaims)
	if len(chain) == 0 {
		return out, nil
	}
	cl := make(map[string]any, len(out)+2)
	for k, v := range out {
		cl[k] = v
	}
	cl["sub"] = u.ID
	cl["scope"] = strings.Join(scopes, " ")
	if profile != "" {
		cl[claims.ProfileClaim] = profile
	}
	subject := u.ID
	if attrs != nil {
		subject = ""
	}
	for _, inst := range chain {
		m, ok := extension.As[claims.Mapper](inst)
		if !ok {
			continue
		}
		req := abi.MapRequest{Tenant: t.name, From: abi.DialectLocal, To: abi.DialectOIDC, Subject: subject, Claims: cl}
		if err := extension.Call(ctx, inst, abi.OpMapClaims, func(ctx context.Context) error {
			mapped, err := claims.Check(m.Map(ctx, req))
			if err == nil {
				cl = mapped
			}
			return err
		}); err != nil {
			return nil, fmt.Errorf("mapping the ID token claims: %w", err)
		}
	}
	delete(cl, claims.ProfileClaim)
	for k := range cl {
		if protocolClaims[k] {
			delete(cl, k)
		}
	}
	return cl, nil
}

// clientProfile names the user profile a client's claims are built from:
// its claims.ClientSettingProfile setting; "" is the default profile.
func clientProfile(fc fosite.Client) string {
	if c, ok := fc.(*client); ok {
		return settingString(c.settings, clientSettingProfile)
	}
	return ""
}

// clientSettingProfile is claims.ClientSettingProfile, under a name that
// code with a local variable called claims can use.
const clientSettingProfile = claims.ClientSettingProfile
