package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

// Grant types and token types of RFC 8693 and RFC 7523.
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange" //nolint:gosec // G101: a URN, not a credential.
	grantTypeJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"     //nolint:gosec // G101: a URN, not a credential.
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"   //nolint:gosec // G101: a URN, not a credential.
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"            //nolint:gosec // G101: a URN, not a credential.
)

// TenantSettingJWTBearerIssuers is the key in store.Tenant.Settings of the
// issuers whose assertions the JWT bearer grant accepts: a JSON array of
// objects {"issuer": "...", "jwks": {...} or "jwks_uri": "https://...",
// "scopes": ["..."]}. "scopes", when set, bounds the scopes a token
// obtained with that issuer's assertions may carry.
const TenantSettingJWTBearerIssuers = "jwt_bearer_issuers" //nolint:gosec // G101: a settings key, not a credential.

// trustedIssuer is one entry of TenantSettingJWTBearerIssuers.
type trustedIssuer struct {
	Issuer  string              `json:"issuer"`
	JWKS    *jose.JSONWebKeySet `json:"jwks,omitempty"`
	JWKSURI string              `json:"jwks_uri,omitempty"`
	Scopes  []string            `json:"scopes,omitempty"`
}

// trustedIssuers reads the tenant's trusted issuers; malformed entries are
// skipped.
func trustedIssuers(settings map[string]any) []trustedIssuer {
	return settingList(settings, TenantSettingJWTBearerIssuers, func(ti trustedIssuer) bool {
		return ti.Issuer != "" && (ti.JWKS != nil || ti.JWKSURI != "")
	})
}

// settingList reads the setting key as a list of T, keeping the entries
// that decode and that valid accepts; a setting that is not a list reads
// as none.
func settingList[T any](settings map[string]any, key string, valid func(T) bool) []T {
	raw, err := json.Marshal(settings[key])
	if err != nil {
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	out := make([]T, 0, len(list))
	for _, e := range list {
		var v T
		if json.Unmarshal(e, &v) == nil && valid(v) {
			out = append(out, v)
		}
	}
	return out
}

// issuedGrant is what an extension grant decided: whom the token is for,
// with which scopes and audiences, and until when at the latest.
type issuedGrant struct {
	subject  string
	username string
	scopes   []string
	audience []string
	// notAfter, when set, caps the token's expiry.
	notAfter time.Time
	// extra claims of the access token (act).
	extra map[string]any
}

// grantTokens prepares r's session for an access token as g says. The
// requested audiences must be the client's; without any, the client's
// registered audiences, else the tenant's issuer.
func grantTokens(ctx context.Context, cfg fosite.Configurator, r fosite.AccessRequester, cl *client, g issuedGrant) error {
	t, err := mustTenant(ctx)
	if err != nil {
		return err
	}
	for _, s := range g.scopes {
		r.GrantScope(s)
	}
	audience := g.audience
	if len(audience) == 0 {
		audience = cl.audience
	}
	if len(audience) == 0 {
		audience = []string{t.issuer}
	}
	for _, a := range audience {
		r.GrantAudience(a)
	}
	s, ok := r.GetSession().(*session)
	if !ok {
		return fmt.Errorf("session of type %T is not a Latch session", r.GetSession())
	}
	now := time.Now().UTC()
	s.Subject, s.Username = g.subject, g.username
	s.JWTClaims.Subject = g.subject
	s.JWTClaims.JTI = uuid.NewString()
	s.JWTClaims.Add("client_id", cl.id)
	for k, v := range g.extra {
		s.JWTClaims.Add(k, v)
	}
	lifetime := cl.lifetime
	if lifetime <= 0 {
		lifetime = cfg.GetAccessTokenLifespan(ctx)
	}
	exp := now.Add(lifetime)
	if !g.notAfter.IsZero() && g.notAfter.Before(exp) {
		exp = g.notAfter
	}
	s.SetExpiresAt(fosite.AccessToken, exp)
	return nil
}

// requestedAudience returns the audience and resource parameters, checked
// against the client's registered audiences (RFC 8707, RFC 8693 section
// 2.1).
func requestedAudience(r fosite.AccessRequester, cl *client) ([]string, error) {
	var out []string
	for _, a := range append(slices.Clone([]string(r.GetRequestedAudience())), r.GetRequestForm()["resource"]...) {
		if !slices.Contains(cl.audience, a) {
			return nil, errInvalidTarget.WithHintf("The client may not request audience %q.", truncate(a, 200))
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// narrowScopes returns the requested scopes when each is in allowed, or
// allowed itself when none is requested.
func narrowScopes(requested, allowed []string) ([]string, error) {
	if len(requested) == 0 {
		return slices.Clone(allowed), nil
	}
	for _, s := range requested {
		if !slices.Contains(allowed, s) {
			return nil, fosite.ErrInvalidScope.WithHintf("The scope %q cannot be granted.", truncate(s, 64))
		}
	}
	return requested, nil
}

// extensionGrant is the common part of the token exchange and JWT bearer
// handlers: one grant type, an authenticated confidential client
// registered for it, and an access token (no refresh token) issued with
// fosite's helper.
type extensionGrant struct {
	grantType string
	helper    *oauth2.HandleHelper
	cfg       fosite.Configurator
	// decide judges the request for the client.
	decide func(ctx context.Context, r fosite.AccessRequester, cl *client) (issuedGrant, error)
}

// CanHandleTokenEndpointRequest reports whether grant_type is the grant's.
func (g *extensionGrant) CanHandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(g.grantType)
}

// CanSkipClientAuth is false: these grants need an authenticated client.
func (g *extensionGrant) CanSkipClientAuth(ctx context.Context, r fosite.AccessRequester) bool {
	return false
}

// HandleTokenEndpointRequest checks the client and lets decide judge the
// request.
func (g *extensionGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	cl, ok := r.GetClient().(*client)
	switch {
	case !ok:
		return fmt.Errorf("client of type %T", r.GetClient())
	case cl.public:
		return fosite.ErrUnauthorizedClient.WithHint("Public clients may not use this grant.")
	case !slices.Contains(cl.grantTypes, g.grantType):
		return fosite.ErrUnauthorizedClient.WithHint("The client is not registered for this grant.")
	}
	ig, err := g.decide(ctx, r, cl)
	if err != nil {
		return err
	}
	return grantTokens(ctx, g.cfg, r, cl, ig)
}

// PopulateTokenEndpointResponse issues the access token.
func (g *extensionGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if _, err := g.helper.IssueAccessToken(ctx, g.cfg.GetAccessTokenLifespan(ctx), r, resp); err != nil {
		return err
	}
	if g.grantType == grantTypeTokenExchange {
		resp.SetExtra("issued_token_type", tokenTypeAccessToken)
	}
	return nil
}

// exchangeToken judges a token exchange request (RFC 8693 section 2.1):
// the subject_token (and actor_token, when sent) must be an active access
// token of this tenant; the new token is for the subject token's subject,
// with the requested scopes (each among the subject token's) or all of
// them, for the requested audiences (each among the client's), expiring no
// later than the subject token. With an actor token the new token carries
// "act" (section 4.1) naming the actor, nested over any "act" of the
// subject token. A "may_act" claim in the subject token (section 4.4)
// must name the actor: the actor token's subject, or the client when no
// actor token is sent.
func (p *Provider) exchangeToken(ctx context.Context, r fosite.AccessRequester, cl *client) (issuedGrant, error) {
	form := r.GetRequestForm()
	if rt := form.Get("requested_token_type"); rt != "" && rt != tokenTypeAccessToken {
		return issuedGrant{}, fosite.ErrInvalidRequest.WithHint("Only access tokens can be requested.")
	}
	subject, err := p.exchangedToken(ctx, form.Get("subject_token"), form.Get("subject_token_type"), "subject")
	if err != nil {
		return issuedGrant{}, err
	}
	ss, _ := subject.GetSession().(*session)
	if ss == nil {
		return issuedGrant{}, errors.New("subject token session is not a Latch session")
	}
	ig := issuedGrant{subject: ss.Subject, username: ss.Username, notAfter: ss.GetExpiresAt(fosite.AccessToken), extra: map[string]any{}}
	actorSub, actorClient := "", cl.id
	if form.Get("actor_token") != "" {
		actor, err := p.exchangedToken(ctx, form.Get("actor_token"), form.Get("actor_token_type"), "actor")
		if err != nil {
			return issuedGrant{}, err
		}
		as, _ := actor.GetSession().(*session)
		if as == nil {
			return issuedGrant{}, errors.New("actor token session is not a Latch session")
		}
		actorSub, actorClient = as.Subject, actor.GetClient().GetID()
		act := map[string]any{"sub": as.Subject}
		if prev, ok := ss.JWTClaims.Extra["act"]; ok {
			act["act"] = prev
		}
		ig.extra["act"] = act
	} else if form.Get("actor_token_type") != "" {
		return issuedGrant{}, fosite.ErrInvalidRequest.WithHint("actor_token_type without actor_token.")
	}
	if may, ok := ss.JWTClaims.Extra["may_act"].(map[string]any); ok {
		sub, _ := may["sub"].(string)
		cid, _ := may["client_id"].(string)
		allowed := (sub == "" || sub == actorSub || (actorSub == "" && sub == cl.id)) && (cid == "" || cid == actorClient)
		if !allowed || (sub == "" && cid == "") {
			return issuedGrant{}, fosite.ErrInvalidGrant.WithHint("The subject token does not allow this actor (may_act).")
		}
	}
	if ig.scopes, err = narrowScopes(r.GetRequestedScopes(), subject.GetGrantedScopes()); err != nil {
		return issuedGrant{}, err
	}
	if ig.audience, err = requestedAudience(r, cl); err != nil {
		return issuedGrant{}, err
	}
	return ig, nil
}

// exchangedToken validates a subject or actor token: an active access
// token of this tenant, of a type this server issues.
func (p *Provider) exchangedToken(ctx context.Context, raw, typ, what string) (fosite.Requester, error) {
	if raw == "" {
		return nil, fosite.ErrInvalidRequest.WithHintf("The %s_token parameter is required.", what)
	}
	if typ != tokenTypeAccessToken && typ != tokenTypeJWT {
		return nil, fosite.ErrInvalidRequest.WithHintf("The %s_token_type must be an access token type this server issues.", what)
	}
	_, ar, err := p.oauth2.IntrospectToken(ctx, raw, fosite.AccessToken, newSession())
	if err != nil {
		if errors.Is(err, errStorage) {
			return nil, err
		}
		// RFC 8693 section 2.2.2: an invalid subject or actor token is
		// invalid_request.
		return nil, fosite.ErrInvalidRequest.WithHintf("The %s_token is not an active access token of this issuer.", what)
	}
	if s, ok := ar.GetSession().(*session); ok && (jktOf(s) != "" || x5tOf(s) != "") {
		// A sender-constrained token (RFC 9449, RFC 8705) is not traded for
		// one its holder's key or certificate does not constrain.
		return nil, fosite.ErrInvalidRequest.WithHintf("The %s_token is sender-constrained and cannot be exchanged.", what)
	}
	return ar, nil
}

// bearerAssertion judges a JWT bearer grant (RFC 7523 sections 2.1 and 3):
// the assertion must be signed (asymmetric algorithms only) by a key of
// one of the tenant's trusted issuers, name it in "iss", carry "sub", have
// this tenant's issuer or token endpoint in "aud", an "exp" at most an
// hour ahead, and a "jti" not used before. The token is for "sub", with
// the requested scopes (each the client's, and the issuer's when it
// limits them).
func (p *Provider) bearerAssertion(ctx context.Context, r fosite.AccessRequester, cl *client) (issuedGrant, error) {
	t, err := mustTenant(ctx)
	if err != nil {
		return issuedGrant{}, err
	}
	raw := r.GetRequestForm().Get("assertion")
	invalid := func(hint string) (issuedGrant, error) {
		return issuedGrant{}, fosite.ErrInvalidGrant.WithHint(hint)
	}
	if raw == "" {
		return issuedGrant{}, fosite.ErrInvalidRequest.WithHint("The assertion parameter is required.")
	}
	if len(raw) > maxAssertionBytes {
		return invalid("The assertion is too large.")
	}
	unverified, err := josejwt.ParseSigned(raw, assertionAlgorithms)
	if err != nil {
		return invalid("The assertion is not a JWT signed with an allowed algorithm.")
	}
	var peek josejwt.Claims
	if err := unverified.UnsafeClaimsWithoutVerification(&peek); err != nil {
		return invalid("The assertion's claims are malformed.")
	}
	var issuer *trustedIssuer
	for _, ti := range trustedIssuers(t.settings) {
		if ti.Issuer == peek.Issuer {
			issuer = &ti
			break
		}
	}
	if issuer == nil {
		return invalid("The assertion's issuer is not trusted.")
	}
	var claims josejwt.Claims
	if err := p.verifyClientJWT(ctx, raw, clientKeys{set: issuer.JWKS, uri: issuer.JWKSURI}, assertionAlgorithms, &claims); err != nil {
		if errors.Is(err, safehttp.ErrForbiddenAddress) {
			p.d.Log.WarnContext(ctx, "trusted issuer jwks_uri refused by the SSRF guard", "issuer", issuer.Issuer)
		}
		return invalid("The assertion's signature does not verify.")
	}
	now := time.Now()
	if err := claims.ValidateWithLeeway(josejwt.Expected{
		Issuer: issuer.Issuer, AnyAudience: josejwt.Audience{t.issuer, t.issuer + PathToken}, Time: now,
	}, assertionLeeway); err != nil {
		return invalid("The assertion's iss, aud, exp or nbf is not valid.")
	}
	switch {
	case claims.Subject == "":
		return invalid("The assertion has no sub.")
	case claims.Expiry == nil:
		return invalid("The assertion has no exp.")
	case claims.Expiry.Time().After(now.Add(maxAssertionLifetime)):
		return invalid("The assertion's exp is too far ahead.")
	case claims.ID == "" || len(claims.ID) > 256:
		return invalid("The assertion has no usable jti.")
	}
	sum := sha256.Sum256([]byte("jwt-bearer\x00" + issuer.Issuer + "\x00" + claims.ID))
	if err := p.storage.SetClientAssertionJWT(ctx, hex.EncodeToString(sum[:]), claims.Expiry.Time().Add(assertionLeeway)); err != nil {
		if errors.Is(err, fosite.ErrJTIKnown) {
			return invalid("The assertion was already used.")
		}
		return issuedGrant{}, err
	}
	return assertionGrant(r, cl, issuer.Scopes, issuedGrant{subject: claims.Subject})
}

// assertionGrant finishes the grant of an assertion (JWT or SAML bearer)
// for ig: the scopes requested, narrowed to the client's scopes and, when
// set, to only (the issuer's); none when none are requested (least
// privilege); and the audience requested.
func assertionGrant(r fosite.AccessRequester, cl *client, only []string, ig issuedGrant) (issuedGrant, error) {
	allowed := cl.scopes
	if len(only) > 0 {
		allowed = slices.DeleteFunc(slices.Clone(cl.scopes), func(s string) bool { return !slices.Contains(only, s) })
	}
	var err error
	if requested := r.GetRequestedScopes(); len(requested) > 0 {
		if ig.scopes, err = narrowScopes(requested, allowed); err != nil {
			return issuedGrant{}, err
		}
	}
	if ig.audience, err = requestedAudience(r, cl); err != nil {
		return issuedGrant{}, err
	}
	return ig, nil
}
