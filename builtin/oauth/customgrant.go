package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/grant"
)

// Extensions lists a tenant's enabled extension instances of a kind, in
// order (*extension.Instances satisfies it). The provider asks it for the
// tenant's grant types (extension.KindGrant).
type Extensions interface {
	Enabled(tenant string, kind extension.Kind) []*extension.Instance
}

// reservedClaims may not be set by a custom grant: they are the token's
// own.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true,
	"jti": true, "client_id": true, "scope": true, "cnf": true,
}

// reservedMembers are the token response members a custom grant's Extra
// may not set (RFC 6749 section 5.1).
var reservedMembers = map[string]bool{
	"access_token": true, "token_type": true, "expires_in": true, "refresh_token": true,
	"scope": true, "id_token": true,
}

// customGrantTypes reports whether the tenant enables any grant type
// extension, which may claim a grant_type this server does not know.
func (p *Provider) customGrantTypes(tenant string) bool {
	return p.d.Extensions != nil && len(p.d.Extensions.Enabled(tenant, extension.KindGrant)) > 0
}

// isExtensionGrantType reports whether gt can name an extension grant: an
// absolute URI (RFC 6749 section 4.5) that is not a built-in grant type.
func (p *Provider) isExtensionGrantType(gt string) bool {
	if slices.Contains(p.grantTypes, gt) || len(gt) > 512 {
		return false
	}
	u, err := url.Parse(gt)
	return err == nil && u.IsAbs()
}

// customGrant is the token endpoint handler of grant types that extensions
// provide (kernel/grant): the tenant's grant instances are offered the
// request in order (skipping a grant.Matcher that does not claim the
// grant_type) until one does not decline. The grant judges; the handler
// checks its answer against the client (scopes and audiences must be the
// client's), then mints the access token (and a refresh token when the
// grant asks for one and the client may use the refresh_token grant).
type customGrant struct {
	p       *Provider
	helper  *oauth2.HandleHelper
	refresh oauth2.RefreshTokenStrategy
	cfg     fosite.Configurator
}

// CanHandleTokenEndpointRequest reports whether the grant type is an
// extension grant the tenant may serve.
func (g *customGrant) CanHandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) bool {
	t, ok := tenantFrom(ctx)
	gts := r.GetGrantTypes()
	return ok && len(gts) == 1 && g.p.isExtensionGrantType(gts[0]) && g.p.customGrantTypes(t.name)
}

// CanSkipClientAuth is false: public clients identify with client_id and
// the grant learns they are unauthenticated.
func (g *customGrant) CanSkipClientAuth(ctx context.Context, r fosite.AccessRequester) bool {
	return false
}

// HandleTokenEndpointRequest asks the tenant's grants and prepares the
// session from the first answer that is not a decline.
func (g *customGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	t, err := mustTenant(ctx)
	if err != nil {
		return err
	}
	cl, ok := r.GetClient().(*client)
	if !ok {
		return fmt.Errorf("client of type %T", r.GetClient())
	}
	gt := r.GetGrantTypes()[0]
	if !slices.Contains(cl.grantTypes, gt) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not registered for this grant type.")
	}
	requested := []string(r.GetRequestedScopes())
	for _, s := range requested {
		if !slices.Contains(cl.scopes, s) {
			return fosite.ErrInvalidScope.WithHintf("The client may not request scope %q.", truncate(s, 64))
		}
	}
	audience, err := requestedAudience(r, cl)
	if err != nil {
		return err
	}
	info := requestInfoFrom(ctx)
	req := abi.TokenRequest{
		Tenant: t.name, GrantType: gt, ClientID: cl.id, ClientAuthenticated: !cl.public,
		Scopes: requested, Audience: audience, Params: map[string][]string{},
		Headers: info.headers, IP: info.ip,
	}
	for k, v := range r.GetRequestForm() {
		if k != "client_secret" && k != "client_assertion" {
			req.Params[k] = slices.Clone(v)
		}
	}
	resp, err := g.ask(ctx, t, req)
	if err != nil {
		return err
	}
	for _, s := range resp.Scopes {
		if !slices.Contains(cl.scopes, s) {
			return fosite.ErrInvalidScope.WithHintf("The grant granted scope %q, which the client may not have.", truncate(s, 64))
		}
	}
	granted := resp.Audience
	for _, a := range granted {
		if !slices.Contains(cl.audience, a) {
			return errInvalidTarget.WithHintf("The grant granted audience %q, which the client may not have.", truncate(a, 200))
		}
	}
	if len(granted) == 0 {
		granted = audience
	}
	subject := resp.Subject
	if subject == "" {
		subject = cl.id
	}
	extra := map[string]any{}
	for k, v := range resp.Claims {
		if !reservedClaims[k] {
			extra[k] = v
		}
	}
	ig := issuedGrant{subject: subject, scopes: resp.Scopes, audience: granted, extra: extra}
	if resp.AccessTokenTTLSeconds > 0 {
		ttl := time.Duration(min(resp.AccessTokenTTLSeconds, int64(g.p.d.MaxAccessTokenLifetime/time.Second))) * time.Second
		ig.notAfter = time.Now().UTC().Add(ttl)
	}
	if err := grantTokens(ctx, g.cfg, r, cl, ig); err != nil {
		return err
	}
	if s, ok := r.GetSession().(*session); ok && resp.RefreshToken {
		s.SetExpiresAt(fosite.RefreshToken, time.Now().UTC().Add(g.cfg.GetRefreshTokenLifespan(ctx)))
	}
	info.custom = &resp
	return nil
}

// ask offers req to the tenant's grants in order.
func (g *customGrant) ask(ctx context.Context, t tenantInfo, req abi.TokenRequest) (abi.TokenResponse, error) {
	for _, inst := range g.p.d.Extensions.Enabled(t.name, extension.KindGrant) {
		if m, ok := extension.As[grant.Matcher](inst); ok && !m.HandlesGrantType(req.GrantType) {
			continue
		}
		gr, ok := extension.As[grant.Type](inst)
		if !ok {
			continue
		}
		req.Config = inst.Config()
		var resp abi.TokenResponse
		declined := false
		err := extension.Call(ctx, inst, abi.OpToken, func(ctx context.Context) error {
			out, err := gr.Token(ctx, req)
			r, err := grant.Check(req, out, err)
			if errors.Is(err, grant.ErrDeclined) {
				declined = true
				return nil
			}
			resp = r
			return err
		})
		switch {
		case err != nil:
			return abi.TokenResponse{}, grantFault(ctx, g.p, inst, err)
		case declined:
			continue
		}
		return resp, nil
	}
	return abi.TokenResponse{}, fosite.ErrUnsupportedGrantType.WithHintf("No grant type of this tenant handles %q.", truncate(req.GrantType, 128))
}

// grantFault maps a grant's refusal to the OAuth error of abi's contract:
// CodeInvalidRequest is invalid_request, CodeUnauthenticated invalid_grant,
// CodeForbidden unauthorized_client; a timeout or an unavailable extension
// is temporarily_unavailable; anything else is server_error, logged.
func grantFault(ctx context.Context, p *Provider, inst *extension.Instance, err error) error {
	f := fault.From(err)
	msg := sanitizeDescription(f.Message)
	switch f.Code {
	case fault.CodeInvalidRequest:
		return fosite.ErrInvalidRequest.WithHint(msg)
	case fault.CodeUnauthenticated:
		return fosite.ErrInvalidGrant.WithHint(msg)
	case fault.CodeForbidden:
		return fosite.ErrUnauthorizedClient.WithHint(msg)
	case fault.CodeTimeout, fault.CodeUnavailable, fault.CodeRateLimited:
		p.d.Log.WarnContext(ctx, "grant type extension unavailable", "extension", inst.Name(), "err", err)
		return fmt.Errorf("calling grant %s: %w: %w", inst.Name(), errStorage, err)
	}
	return &fosite.RFC6749Error{ErrorField: "server_error", DescriptionField: "The grant failed.", CodeField: http.StatusInternalServerError, DebugField: strings.TrimSpace(err.Error())}
}

// PopulateTokenEndpointResponse issues the access token, the refresh token
// when asked for and allowed, and the grant's extra response members.
func (g *customGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	custom := requestInfoFrom(ctx).custom
	accessSig, err := g.helper.IssueAccessToken(ctx, g.cfg.GetAccessTokenLifespan(ctx), r, resp)
	if err != nil {
		return err
	}
	if custom == nil {
		return nil
	}
	if custom.RefreshToken && r.GetClient().GetGrantTypes().Has(string(fosite.GrantTypeRefreshToken)) {
		refresh, refreshSig, err := g.refresh.GenerateRefreshToken(ctx, r)
		if err != nil {
			return err
		}
		if err := g.p.storage.CreateRefreshTokenSession(ctx, refreshSig, accessSig, r.Sanitize([]string{})); err != nil {
			return err
		}
		resp.SetExtra("refresh_token", refresh)
	}
	for k, v := range custom.Extra {
		if !reservedMembers[k] {
			resp.SetExtra(k, v)
		}
	}
	return nil
}

var _ fosite.TokenEndpointHandler = (*customGrant)(nil)
