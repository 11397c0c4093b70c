package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gofiber/fiber/v2"
	"github.com/ory/fosite"

	"github.com/latchid/latch/builtin/internal/safehttp"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// PathRegister is the client registration endpoint (RFC 7591 section 3);
// PathRegister + "/{client_id}" is the client configuration endpoint (RFC
// 7592 section 2).
const PathRegister = "/oauth2/register"

// Audit actions of dynamic client registration.
const (
	// ActionClientRegister is recorded when a client registers itself, or
	// a registration is refused.
	ActionClientRegister event.Action = "client.register"
	// ActionClientManage is recorded when a registered client reads,
	// updates or deletes its registration.
	ActionClientManage event.Action = "client.manage"
)

const (
	// kindInitialAccessToken is the store.Token kind of initial access
	// tokens, keyed by their SHA-256.
	kindInitialAccessToken = "initial_access_token"
	// kindRegistrationToken is the store.Token kind of registration access
	// tokens, keyed by their SHA-256; ClientID names the client.
	kindRegistrationToken = "registration_token"
	// registrationTokenLifetime bounds a registration access token; the
	// client's record outlives it, but it can no longer manage itself.
	registrationTokenLifetime = 5 * 365 * 24 * time.Hour
	// maxRegistrationBody bounds a registration request.
	maxRegistrationBody = 32 << 10
	// ClientSettingRegistered marks a client that registered itself
	// (store.Client.Settings, a JSON true).
	ClientSettingRegistered = "registered_dynamically"
)

// registrableScopes are the scopes a client may register for itself:
// those of OpenID Connect. API scopes (and latch:admin above all) are
// granted by an operator through the admin API, never self-assigned.
var registrableScopes = []string{"openid", "profile", "email", "phone", "offline_access"}

// registrableGrants are the grant types a client may register for itself.
var registrableGrants = []string{
	string(fosite.GrantTypeAuthorizationCode), string(fosite.GrantTypeRefreshToken),
	string(fosite.GrantTypeClientCredentials), grantTypeDeviceCode,
}

// Errors of RFC 7591 section 3.2.2.
var (
	errInvalidRedirectURI    = &fosite.RFC6749Error{ErrorField: "invalid_redirect_uri", DescriptionField: "A redirect URI is not valid.", CodeField: http.StatusBadRequest}
	errInvalidClientMetadata = &fosite.RFC6749Error{ErrorField: "invalid_client_metadata", DescriptionField: "The client metadata is not valid.", CodeField: http.StatusBadRequest}
)

// tokenKey is the store key of a bearer credential: its SHA-256.
func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// IssueInitialAccessToken returns a new initial access token for the
// tenant with id tenantID (RFC 7591 section 3): a bearer credential that
// lets one client register at PathRegister before ttl passes. Only its
// SHA-256 is stored. The admin API and CLI call it.
func (p *Provider) IssueInitialAccessToken(ctx context.Context, tenantID string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return "", time.Time{}, fmt.Errorf("issuing initial access token: lifetime %s is not within (0, 720h]", ttl)
	}
	tok, err := secret.RandomToken(32)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issuing initial access token: %w", err)
	}
	now := time.Now().UTC()
	exp := now.Add(ttl)
	if err := p.d.Store.CreateToken(ctx, store.Token{Kind: kindInitialAccessToken, Key: tokenKey(tok), TenantID: tenantID, Active: true, CreatedAt: now, ExpiresAt: exp}); err != nil {
		return "", time.Time{}, fmt.Errorf("issuing initial access token: %w", err)
	}
	return tok, exp, nil
}

// clientMetadata is the client metadata of RFC 7591 section 2 that this
// server accepts, and answers with.
type clientMetadata struct {
	ClientID                     string              `json:"client_id,omitempty"`
	ClientSecret                 string              `json:"client_secret,omitempty"`
	ClientIDIssuedAt             int64               `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt        *int64              `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken      string              `json:"registration_access_token,omitempty"`
	RegistrationClientURI        string              `json:"registration_client_uri,omitempty"`
	ClientName                   string              `json:"client_name,omitempty"`
	RedirectURIs                 []string            `json:"redirect_uris,omitempty"`
	GrantTypes                   []string            `json:"grant_types,omitempty"`
	ResponseTypes                []string            `json:"response_types,omitempty"`
	Scope                        string              `json:"scope,omitempty"`
	TokenEndpointAuthMethod      string              `json:"token_endpoint_auth_method,omitempty"`
	TokenEndpointAuthSigningAlg  string              `json:"token_endpoint_auth_signing_alg,omitempty"`
	RequestObjectSigningAlg      string              `json:"request_object_signing_alg,omitempty"`
	JWKS                         *jose.JSONWebKeySet `json:"jwks,omitempty"`
	JWKSURI                      string              `json:"jwks_uri,omitempty"`
	PostLogoutRedirectURIs       []string            `json:"post_logout_redirect_uris,omitempty"`
	RequirePushedAuthorizationRs bool                `json:"require_pushed_authorization_requests,omitempty"`
	// Logout notifications (Front-Channel Logout 1.0 section 2,
	// Back-Channel Logout 1.0 section 2.2) and DPoP (RFC 9449 section
	// 5.2).
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty"`
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	DPoPBoundAccessTokens             bool   `json:"dpop_bound_access_tokens,omitempty"`
}

// checkMetadata validates m and fills in the defaults of RFC 7591 section
// 2: grant_types authorization_code, response_types code, auth method
// client_secret_basic, scope openid.
func (p *Provider) checkMetadata(ctx context.Context, m *clientMetadata) error {
	bad := func(format string, args ...any) error { return errInvalidClientMetadata.WithHintf(format, args...) }
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{string(fosite.GrantTypeAuthorizationCode)}
	}
	for _, g := range m.GrantTypes {
		if !slices.Contains(registrableGrants, g) {
			return bad("The grant type %q cannot be registered.", truncate(g, 128))
		}
	}
	code := slices.Contains(m.GrantTypes, string(fosite.GrantTypeAuthorizationCode))
	if len(m.ResponseTypes) == 0 && code {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return bad("The response type %q is not supported.", truncate(rt, 64))
		}
	}
	if code != (len(m.ResponseTypes) > 0) {
		return bad("response_type code goes with grant type authorization_code, and only with it.")
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = authMethodBasic
	}
	switch m.TokenEndpointAuthMethod {
	case authMethodBasic, authMethodPost:
	case authMethodSecretJWT:
		if p.secretBox == nil {
			return bad("The token_endpoint_auth_method %q is not supported.", authMethodSecretJWT)
		}
	case authMethodNone:
		if slices.Contains(m.GrantTypes, string(fosite.GrantTypeClientCredentials)) {
			return bad("A public client (none) cannot use client_credentials.")
		}
	case authMethodPrivateKeyJWT:
		if (m.JWKS == nil) == (m.JWKSURI == "") {
			return bad("private_key_jwt needs jwks or jwks_uri, not both.")
		}
	case authMethodSelfSignedTLS:
		switch {
		case !p.d.SelfSignedMutualTLS:
			return bad("The token_endpoint_auth_method %q is not supported.", authMethodSelfSignedTLS)
		case (m.JWKS == nil) == (m.JWKSURI == ""):
			return bad("self_signed_tls_client_auth needs jwks or jwks_uri, not both.")
		case m.JWKS != nil && len(registeredCertThumbprints(m.JWKS.Keys)) == 0:
			return bad("self_signed_tls_client_auth needs a key with the certificate in x5c (or its x5t#S256) in jwks.")
		}
	default:
		return bad("The token_endpoint_auth_method %q is not supported.", truncate(m.TokenEndpointAuthMethod, 64))
	}
	if m.JWKS != nil && m.JWKSURI != "" {
		return bad("Send jwks or jwks_uri, not both.")
	}
	if m.JWKS != nil {
		for _, k := range m.JWKS.Keys {
			if !k.Valid() || !k.IsPublic() {
				return bad("jwks must hold valid public keys only.")
			}
		}
	}
	if m.JWKSURI != "" {
		if err := safehttp.CheckURL(m.JWKSURI, p.d.AllowPrivateNetworks); err != nil {
			return bad("jwks_uri must be an https URL.")
		}
	}
	authAlg := m.TokenEndpointAuthSigningAlg
	if m.TokenEndpointAuthMethod == authMethodSecretJWT {
		if authAlg != "" && !slices.Contains(secretJWTAlgorithms, jose.SignatureAlgorithm(authAlg)) {
			return bad("The algorithm %q is not supported for client_secret_jwt.", truncate(authAlg, 32))
		}
		authAlg = ""
	}
	for _, alg := range []string{authAlg, m.RequestObjectSigningAlg} {
		if alg != "" && len(pinnedAlgorithms(alg)) == 0 {
			return bad("The algorithm %q is not supported.", truncate(alg, 32))
		}
	}
	if m.FrontchannelLogoutURI != "" && frontchannelURI(store.Client{
		RedirectURIs: m.RedirectURIs, Settings: map[string]any{ClientSettingFrontchannelLogoutURI: m.FrontchannelLogoutURI},
	}, tenantInfo{}, &store.Session{}) == "" {
		return bad("frontchannel_logout_uri must be an http(s) URL on the origin of one of the redirect_uris.")
	}
	if m.BackchannelLogoutURI != "" {
		if err := safehttp.CheckURL(m.BackchannelLogoutURI, p.d.AllowPrivateNetworks); err != nil {
			return bad("backchannel_logout_uri must be an https URL.")
		}
	}
	if code && len(m.RedirectURIs) == 0 {
		return errInvalidRedirectURI.WithHint("redirect_uris is required for the authorization code grant.")
	}
	for _, list := range [][]string{m.RedirectURIs, m.PostLogoutRedirectURIs} {
		for _, raw := range list {
			u, err := url.Parse(raw)
			if err != nil || !u.IsAbs() || len(raw) > 2048 || !fosite.IsValidRedirectURI(u) || !fosite.IsRedirectURISecure(ctx, u) {
				return errInvalidRedirectURI.WithHintf("The redirect URI %q must be absolute, without fragment, and https except on loopback.", truncate(raw, 200))
			}
		}
	}
	if m.Scope == "" {
		m.Scope = "openid"
	}
	for _, s := range strings.Fields(m.Scope) {
		if !slices.Contains(registrableScopes, s) {
			return bad("The scope %q cannot be registered; ask an administrator.", truncate(s, 64))
		}
	}
	if len(m.ClientName) > 200 {
		return bad("client_name is too long.")
	}
	return nil
}

// apply writes m into c.
func (m *clientMetadata) apply(c *store.Client) {
	c.Name = m.ClientName
	c.Public = m.TokenEndpointAuthMethod == authMethodNone
	c.RedirectURIs = m.RedirectURIs
	c.GrantTypes = m.GrantTypes
	c.ResponseTypes = m.ResponseTypes
	c.Scopes = strings.Fields(m.Scope)
	c.TokenEndpointAuthMethod = m.TokenEndpointAuthMethod
	settings := map[string]any{ClientSettingRegistered: true}
	if m.JWKS != nil {
		var v any
		if raw, err := json.Marshal(m.JWKS); err == nil && json.Unmarshal(raw, &v) == nil {
			settings[ClientSettingJWKS] = v
		}
	}
	set := func(k, v string) {
		if v != "" {
			settings[k] = v
		}
	}
	set(ClientSettingJWKSURI, m.JWKSURI)
	set(ClientSettingTokenEndpointAuthSigningAlg, m.TokenEndpointAuthSigningAlg)
	set(ClientSettingRequestObjectSigningAlg, m.RequestObjectSigningAlg)
	if len(m.PostLogoutRedirectURIs) > 0 {
		settings[ClientSettingPostLogoutRedirectURIs] = m.PostLogoutRedirectURIs
	}
	if m.RequirePushedAuthorizationRs {
		settings[ClientSettingRequirePAR] = true
	}
	set(ClientSettingFrontchannelLogoutURI, m.FrontchannelLogoutURI)
	set(ClientSettingBackchannelLogoutURI, m.BackchannelLogoutURI)
	if m.FrontchannelLogoutSessionRequired {
		settings[ClientSettingFrontchannelLogoutSessionRequired] = true
	}
	if m.DPoPBoundAccessTokens {
		settings[ClientSettingDPoPBoundAccessTokens] = true
	}
	c.Settings = settings
}

// metadataOf describes a stored client.
func metadataOf(c store.Client, t tenantInfo) clientMetadata {
	m := clientMetadata{
		ClientID: c.ClientID, ClientIDIssuedAt: c.CreatedAt.Unix(), ClientName: c.Name,
		RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes, ResponseTypes: c.ResponseTypes,
		Scope: strings.Join(c.Scopes, " "), TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		RegistrationClientURI:        t.issuer + PathRegister + "/" + url.PathEscape(c.ClientID),
		JWKSURI:                      settingString(c.Settings, ClientSettingJWKSURI),
		TokenEndpointAuthSigningAlg:  settingString(c.Settings, ClientSettingTokenEndpointAuthSigningAlg),
		RequestObjectSigningAlg:      settingString(c.Settings, ClientSettingRequestObjectSigningAlg),
		PostLogoutRedirectURIs:       settingStrings(c.Settings[ClientSettingPostLogoutRedirectURIs]),
		RequirePushedAuthorizationRs: c.Settings[ClientSettingRequirePAR] == true,

		FrontchannelLogoutURI:             settingString(c.Settings, ClientSettingFrontchannelLogoutURI),
		FrontchannelLogoutSessionRequired: c.Settings[ClientSettingFrontchannelLogoutSessionRequired] == true,
		BackchannelLogoutURI:              settingString(c.Settings, ClientSettingBackchannelLogoutURI),
		DPoPBoundAccessTokens:             c.Settings[ClientSettingDPoPBoundAccessTokens] == true,
	}
	if ks := readClientKeys(c.Settings); ks.set != nil {
		m.JWKS = ks.set
	}
	if c.SecretHash != "" {
		zero := int64(0)
		m.ClientSecretExpiresAt = &zero
	}
	return m
}

// usesSecret reports whether a client authenticating with method needs a
// client secret. Clients that prove a key or a certificate get none
// (RFC 7591 §3.2.1: the secret is for clients that authenticate with it).
func usesSecret(method string) bool {
	switch method {
	case authMethodPrivateKeyJWT, authMethodTLS, authMethodSelfSignedTLS:
		return false
	}
	return true
}

// bearer returns the bearer token of the Authorization header.
func bearer(c *fiber.Ctx) string {
	scheme, tok, ok := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// bearerInvalid answers RFC 6750 section 3.1's invalid_token.
func bearerInvalid(c *fiber.Ctx) error {
	noStore(c)
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer error="invalid_token"`)
	return c.Status(http.StatusUnauthorized).JSON(errorBody{Error: "invalid_token", Description: "The access token is missing, unknown or expired."})
}

// readMetadata decodes the JSON body of a registration request.
func readMetadata(c *fiber.Ctx) (*clientMetadata, error) {
	if !strings.HasPrefix(c.Get(fiber.HeaderContentType), fiber.MIMEApplicationJSON) {
		return nil, fosite.ErrInvalidRequest.WithHint("The body must be application/json.")
	}
	if len(c.Body()) > maxRegistrationBody {
		return nil, errInvalidClientMetadata.WithHint("The metadata is too large.")
	}
	m := &clientMetadata{}
	if err := json.Unmarshal(c.Body(), m); err != nil {
		return nil, errInvalidClientMetadata.WithHint("The body is not valid client metadata JSON.")
	}
	return m, nil
}

// register serves the client registration endpoint (RFC 7591 section 3).
// The request carries an initial access token as a bearer token; it is
// used once. The client gets a generated client_id and, unless public, a
// generated secret, and a registration access token for PathRegister +
// "/{client_id}".
func (p *Provider) register(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	iat := bearer(c)
	if iat == "" {
		return bearerInvalid(c)
	}
	if _, err := p.d.Store.GetToken(ctx, t.id, kindInitialAccessToken, tokenKey(iat)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			p.publish(c, t, "anonymous", ActionClientRegister, "", event.OutcomeFailure, map[string]any{"reason": "unknown or expired initial access token"})
			return bearerInvalid(c)
		}
		return p.writeError(c, errors.Join(errStorage, err))
	}
	m, err := readMetadata(c)
	if err != nil {
		return p.writeError(c, err)
	}
	if m.ClientID != "" || m.ClientSecret != "" {
		return p.writeError(c, errInvalidClientMetadata.WithHint("client_id and client_secret are assigned by the server."))
	}
	if err := p.checkMetadata(ctx, m); err != nil {
		return p.writeError(c, err)
	}
	// The initial access token is used once: the first registration that
	// deletes it wins.
	if err := p.d.Store.DeleteToken(ctx, t.id, kindInitialAccessToken, tokenKey(iat)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return bearerInvalid(c)
		}
		return p.writeError(c, errors.Join(errStorage, err))
	}
	id, err := secret.RandomToken(16)
	if err != nil {
		return p.writeError(c, err)
	}
	cl := store.Client{TenantID: t.id, ClientID: "dyn-" + id, Enabled: true}
	m.apply(&cl)
	var sec string
	if !cl.Public && usesSecret(cl.TokenEndpointAuthMethod) {
		if sec, err = secret.GenerateClientSecret(); err != nil {
			return p.writeError(c, err)
		}
		cl.SecretHash = secret.HashClientSecret(sec)
	}
	created, err := p.d.Store.CreateClient(ctx, cl)
	if err != nil {
		return p.writeError(c, errors.Join(errStorage, err))
	}
	p.dir.ForgetClients(t.id)
	if err := p.StoreClientSecret(ctx, created, sec); err != nil {
		return p.writeError(c, errors.Join(errStorage, err))
	}
	rat, err := secret.RandomToken(32)
	if err != nil {
		return p.writeError(c, err)
	}
	now := time.Now().UTC()
	if err := p.d.Store.CreateToken(ctx, store.Token{
		Kind: kindRegistrationToken, Key: tokenKey(rat), TenantID: t.id, ClientID: created.ClientID, Active: true,
		CreatedAt: now, ExpiresAt: now.Add(registrationTokenLifetime),
	}); err != nil {
		return p.writeError(c, errors.Join(errStorage, err))
	}
	out := metadataOf(created, t)
	out.ClientSecret, out.RegistrationAccessToken = sec, rat
	p.publish(c, t, "anonymous", ActionClientRegister, event.Ref("client", created.ClientID), event.OutcomeSuccess, map[string]any{
		"grant_types": created.GrantTypes, "scope": m.Scope, "auth_method": created.TokenEndpointAuthMethod,
	})
	noStore(c)
	return c.Status(http.StatusCreated).JSON(out)
}

// manage serves the client configuration endpoint (RFC 7592): GET reads,
// PUT replaces and DELETE removes the registration of the client whose
// registration access token is the bearer token.
func (p *Provider) manage(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	id, err := url.PathUnescape(c.Params("client_id"))
	if err != nil || id == "" {
		return bearerInvalid(c)
	}
	rat := bearer(c)
	if rat == "" {
		return bearerInvalid(c)
	}
	tok, err := p.d.Store.GetToken(ctx, t.id, kindRegistrationToken, tokenKey(rat))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return bearerInvalid(c)
	case err != nil:
		return p.writeError(c, errors.Join(errStorage, err))
	case subtle.ConstantTimeCompare([]byte(tok.ClientID), []byte(id)) != 1:
		return bearerInvalid(c)
	}
	cl, err := p.d.Store.GetClientByClientID(ctx, t.id, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return bearerInvalid(c)
	case err != nil:
		return p.writeError(c, errors.Join(errStorage, err))
	}
	noStore(c)
	detail := map[string]any{"method": c.Method()}
	switch c.Method() {
	case fiber.MethodGet:
		return c.JSON(metadataOf(cl, t))
	case fiber.MethodDelete:
		if err := p.d.Store.DeleteClient(ctx, t.id, cl.ID); err != nil {
			return p.writeError(c, errors.Join(errStorage, err))
		}
		p.dir.ForgetClients(t.id)
		if err := p.d.Store.DeleteToken(ctx, t.id, kindRegistrationToken, tokenKey(rat)); err != nil && !errors.Is(err, store.ErrNotFound) {
			p.d.Log.WarnContext(ctx, "deleting registration access token", "err", err)
		}
		if err := p.d.Store.DeleteToken(ctx, t.id, kindSealedSecret, cl.ClientID); err != nil && !errors.Is(err, store.ErrNotFound) {
			p.d.Log.WarnContext(ctx, "deleting the sealed client secret", "err", err)
		}
		p.publish(c, t, event.Ref("client", id), ActionClientManage, event.Ref("client", id), event.OutcomeSuccess, detail)
		return c.SendStatus(http.StatusNoContent)
	}
	m, err := readMetadata(c)
	if err != nil {
		return p.writeError(c, err)
	}
	if m.ClientID != id {
		return p.writeError(c, errInvalidClientMetadata.WithHint("client_id must be the client's."))
	}
	if m.ClientSecret != "" && !secret.VerifyClientSecret(m.ClientSecret, cl.SecretHash) {
		return p.writeError(c, errInvalidClientMetadata.WithHint("client_secret does not match."))
	}
	if err := p.checkMetadata(ctx, m); err != nil {
		return p.writeError(c, err)
	}
	if (m.TokenEndpointAuthMethod == authMethodNone) != cl.Public {
		return p.writeError(c, errInvalidClientMetadata.WithHint("A client cannot switch between public and confidential."))
	}
	m.apply(&cl)
	if !cl.Public && cl.SecretHash == "" && usesSecret(cl.TokenEndpointAuthMethod) {
		return p.writeError(c, errInvalidClientMetadata.WithHint("The client was registered without a secret, so it cannot switch to a secret-based authentication method."))
	}
	updated, err := p.d.Store.UpdateClient(ctx, cl)
	if err != nil {
		return p.writeError(c, errors.Join(errStorage, err))
	}
	p.dir.ForgetClients(t.id)
	if m.ClientSecret != "" {
		// The client proved its secret: keep it sealed when the client
		// now uses client_secret_jwt.
		if err := p.StoreClientSecret(ctx, updated, m.ClientSecret); err != nil {
			return p.writeError(c, errors.Join(errStorage, err))
		}
	}
	p.publish(c, t, event.Ref("client", id), ActionClientManage, event.Ref("client", id), event.OutcomeSuccess, detail)
	return c.JSON(metadataOf(updated, t))
}
