package oauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// errInvalidTarget is RFC 8707 section 2's "invalid_target": a requested
// resource or audience is malformed or not allowed for the client. fosite
// has no such error.
var errInvalidTarget = &fosite.RFC6749Error{
	ErrorField:       "invalid_target",
	DescriptionField: "The requested resource is invalid, unknown, or malformed.",
	CodeField:        http.StatusBadRequest,
}

// matchAudience is fosite's AudienceMatchingStrategy: every requested
// audience must be one of the client's registered audiences, compared as
// exact strings.
func matchAudience(allowed, requested []string) error {
	for _, a := range requested {
		if !slices.Contains(allowed, a) {
			return errInvalidTarget.WithHintf("The client may not request audience %q.", a)
		}
	}
	return nil
}

// clientCredentialsGrant is the token endpoint handler of the client
// credentials grant (RFC 6749 section 4.4). It wraps fosite's handler,
// which checks the scopes and audiences and issues the token, and adds
// what fosite leaves out or answers differently:
//
//   - a public client, or one not registered for the grant, gets
//     unauthorized_client before anything else (section 5.2; fosite says
//     invalid_grant for the former and checks the latter last);
//   - "resource" parameters (RFC 8707 section 2) are audiences too;
//   - the granted scopes are the requested ones (none when none is
//     requested: section 3.3 lets the server pick a default, and the least
//     privilege is no scope);
//   - the granted audience is the requested one, else the client's
//     registered audiences, else the tenant's issuer (RFC 9068 section 3
//     requires a default);
//   - the session's claims: sub and client_id are the client's id (RFC
//     9068 section 2.2), jti is a fresh UUID.
type clientCredentialsGrant struct {
	inner *oauth2.ClientCredentialsGrantHandler
}

// CanHandleTokenEndpointRequest reports whether grant_type is
// client_credentials.
func (g *clientCredentialsGrant) CanHandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) bool {
	return g.inner.CanHandleTokenEndpointRequest(ctx, r)
}

// CanSkipClientAuth is false: the grant needs an authenticated client.
func (g *clientCredentialsGrant) CanSkipClientAuth(ctx context.Context, r fosite.AccessRequester) bool {
	return false
}

// HandleTokenEndpointRequest validates the request and prepares the
// session (RFC 6749 section 4.4.2).
func (g *clientCredentialsGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	cl := r.GetClient()
	if cl.IsPublic() {
		return fosite.ErrUnauthorizedClient.WithHint("Public clients may not use the client_credentials grant.")
	}
	if !cl.GetGrantTypes().Has(string(fosite.GrantTypeClientCredentials)) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the client_credentials grant.")
	}
	audience := slices.Clone([]string(r.GetRequestedAudience()))
	for _, res := range r.GetRequestForm()["resource"] {
		if err := checkResource(res); err != nil {
			return err
		}
		if !slices.Contains(audience, res) {
			audience = append(audience, res)
		}
	}
	r.SetRequestedAudience(audience)

	if err := g.inner.HandleTokenEndpointRequest(ctx, r); err != nil {
		return err
	}

	for _, s := range r.GetRequestedScopes() {
		r.GrantScope(s)
	}
	granted := audience
	if len(granted) == 0 {
		granted = registeredAudience(cl)
	}
	if len(granted) == 0 {
		t, err := mustTenant(ctx)
		if err != nil {
			return fmt.Errorf("granting audience: %w", err)
		}
		granted = []string{t.issuer}
	}
	for _, a := range granted {
		r.GrantAudience(a)
	}

	sess, ok := r.GetSession().(*session)
	if !ok {
		return fmt.Errorf("preparing session: session of type %T is not a Latch session", r.GetSession())
	}
	sess.Subject = cl.GetID()
	claims := sess.JWTClaims
	claims.Subject = cl.GetID()
	claims.JTI = uuid.NewString()
	claims.Add("client_id", cl.GetID())
	return nil
}

// PopulateTokenEndpointResponse issues the access token (RFC 6749 section
// 4.4.3). No refresh token is issued (section 4.4.3: it "SHOULD NOT be
// included").
func (g *clientCredentialsGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	return g.inner.PopulateTokenEndpointResponse(ctx, r, resp)
}

// checkResource enforces RFC 8707 section 2: a resource is an absolute URI
// without a fragment.
func checkResource(res string) error {
	u, err := url.Parse(res)
	if err != nil || !u.IsAbs() || strings.ContainsRune(res, '#') {
		return errInvalidTarget.WithHint("A resource must be an absolute URI without a fragment.")
	}
	return nil
}

var _ fosite.TokenEndpointHandler = (*clientCredentialsGrant)(nil)
