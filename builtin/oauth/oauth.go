// Package oauth is Latch's OAuth 2.0 authorization server front door, built
// on ory/fosite. This slice serves, for every tenant:
//
//   - discovery: OpenID Connect Discovery 1.0 section 4 and RFC 8414
//     (authorization server metadata), listing only what is implemented;
//   - the tenant's JWK Set (RFC 7517 section 5): active, next and retiring
//     signing keys from kernel/keys;
//   - the token endpoint (RFC 6749 section 3.2) with the client credentials
//     grant (section 4.4), clients authenticating with client_secret_basic
//     or client_secret_post (section 2.3.1), and access tokens that are JWTs
//     per RFC 9068, signed by the tenant's active key; audiences are
//     requested with "audience" or "resource" (RFC 8707);
//   - token introspection (RFC 7662) and revocation (RFC 7009).
//
// The default tenant's issuer is the public URL; any other tenant's is
// {public_url}/t/{tenant}. Every storage call carries the tenant, so a token
// of one tenant is unknown (inactive) at every other.
//
// Errors on every OAuth endpoint are the JSON of RFC 6749 section 5.2
// ({"error","error_description"}) with Cache-Control: no-store.
//
// Use it in three steps:
//
//  1. New(Deps{...}) builds the provider;
//  2. Mount(app) adds its routes to the node's fiber application;
//  3. ValidateAccessToken lets other front doors (the admin API) accept the
//     access tokens it issues.
package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchid/latch/builtin/internal/safehttp"
	"github.com/latchid/latch/builtin/login"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Sentinel errors of this package. Check them with errors.Is.
var (
	// ErrInvalidToken means an access token is unknown to the tenant,
	// expired, revoked, malformed, badly signed, or belongs to a client that
	// is gone or disabled (RFC 6750 section 3.1, "invalid_token").
	ErrInvalidToken = errors.New("invalid access token")
	// errStorage marks failures of the store or key manager: the request
	// could not be decided, which is neither the client's fault nor an
	// invalid token. Endpoints answer 503 temporarily_unavailable.
	errStorage = errors.New("storage unavailable")
)

// Audit actions of this package, in the "<object>.<verb>" form of
// kernel/event.
const (
	// ActionTokenIssue: a token was issued. Detail holds the grant type,
	// scope, audience, token id (jti) and expiry; never the token.
	ActionTokenIssue event.Action = "token.issue"
	// ActionTokenDeny: a token request was refused. Detail holds the RFC
	// 6749 error code and the reason; never the secret.
	ActionTokenDeny event.Action = "token.deny"
	// ActionTokenRevoke: a client revoked a token (RFC 7009).
	ActionTokenRevoke event.Action = "token.revoke"
)

// Defaults of Deps.
const (
	// DefaultAccessTokenLifetime is the lifetime of access tokens when
	// neither Deps nor the client sets one.
	DefaultAccessTokenLifetime = time.Hour
	// DefaultMaxAccessTokenLifetime caps per-client lifetimes. It equals
	// keys.DefaultOverlap, so that the key that signed a token stays
	// published until the token expires.
	DefaultMaxAccessTokenLifetime = keys.DefaultOverlap
	// DefaultRefreshTokenLifetime is the lifetime of refresh tokens. Each
	// use rotates the token; the new one lives this long again.
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	// authorizeCodeLifetime is short: a code is exchanged at once (RFC
	// 6749 section 4.1.2 recommends at most 10 minutes).
	authorizeCodeLifetime = 2 * time.Minute
	// idTokenLifetime is the lifetime of ID tokens.
	idTokenLifetime = time.Hour
)

// ClientSettingAccessTokenLifetime is the key in store.Client.Settings
// that overrides the access token lifetime for one client, in seconds (a
// JSON number). Values below one second are ignored; values above
// Deps.MaxAccessTokenLifetime are capped.
const ClientSettingAccessTokenLifetime = "access_token_lifetime"

// Store is the part of the store the provider uses. store.Store satisfies
// it.
type Store interface {
	GetTenant(ctx context.Context, id string) (store.Tenant, error)
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetClientByClientID(ctx context.Context, tenantID, clientID string) (store.Client, error)
	CreateClient(ctx context.Context, c store.Client) (store.Client, error)
	UpdateClient(ctx context.Context, c store.Client) (store.Client, error)
	DeleteClient(ctx context.Context, tenantID, id string) error
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
	GetConsent(ctx context.Context, tenantID, userID, clientID string) (store.Consent, error)
	PutConsent(ctx context.Context, c store.Consent) error
	store.Tokens
}

// KeySource signs with and publishes a tenant's keys. *keys.Manager
// satisfies it.
type KeySource interface {
	// Signer returns the tenant's active signer of alg ("" is the default
	// algorithm).
	Signer(ctx context.Context, tenantID, alg string) (*keys.Signer, error)
	// PublicJWKS returns the tenant's published keys.
	PublicJWKS(ctx context.Context, tenantID string) (jose.JSONWebKeySet, error)
}

// Auditor records audit events without blocking (kernel/event.Bus).
type Auditor interface {
	Publish(e event.Event) bool
}

// Deps are what the provider needs from the node.
type Deps struct {
	// Store holds tenants, clients and token records. Required.
	Store Store
	// Keys signs access tokens and serves the JWKS. Required.
	Keys KeySource
	// PublicURL is the externally visible base URL of the node
	// ("https://id.example.com"; a trailing slash is dropped); it is the
	// default tenant's issuer. Routes are mounted at the root of the
	// application, so a path in PublicURL must be one a reverse proxy
	// strips. Required; http is accepted for development.
	PublicURL string
	// Log receives failures the client cannot be told about. Nil discards.
	Log *slog.Logger
	// Audit receives token.issue, token.deny and token.revoke events. Nil
	// discards.
	Audit Auditor
	// AccessTokenLifetime is the default access token lifetime. Zero means
	// DefaultAccessTokenLifetime.
	AccessTokenLifetime time.Duration
	// Login signs browsers in and renders the shared pages (login,
	// consent, logout). Required.
	Login *login.Service
	// HMACKey is the 32-byte secret that authorization codes and refresh
	// tokens are MACed with (derive it from the master key with
	// secret.DeriveKey). Every node of a cluster must use the same one.
	// Required.
	HMACKey []byte
	// RefreshTokenLifetime is the lifetime of refresh tokens; zero means
	// DefaultRefreshTokenLifetime.
	RefreshTokenLifetime time.Duration
	// MaxAccessTokenLifetime caps per-client lifetimes
	// (ClientSettingAccessTokenLifetime). Keep it at or below the key
	// manager's overlap so tokens verify until they expire. Zero means
	// DefaultMaxAccessTokenLifetime.
	MaxAccessTokenLifetime time.Duration
	// AllowPrivateNetworks lets the provider fetch URLs that clients
	// register (jwks_uri) from loopback, private and link-local addresses,
	// and over plain http. For tests and development only: in production
	// it opens the node's internal network to anyone who can register a
	// client.
	AllowPrivateNetworks bool
	// MutualTLS says the node terminates TLS and verifies client
	// certificates (tls.client_ca_file): clients may then authenticate
	// with tls_client_auth and get certificate-bound tokens (RFC 8705).
	MutualTLS bool
	// SelfSignedMutualTLS says the node terminates TLS and accepts any
	// client certificate (tls.self_signed_client_certs): clients may then
	// authenticate with self_signed_tls_client_auth, with a certificate
	// they registered in jwks or jwks_uri (RFC 8705 section 2.2), and get
	// certificate-bound tokens.
	SelfSignedMutualTLS bool
	// DPoPNonceRequired makes every tenant's token and UserInfo endpoints
	// require a nonce of this server in DPoP proofs (RFC 9449 sections 8
	// and 9); without it, tenants and clients opt in with their
	// dpop_nonce_required setting. The nonces are MACed with a key
	// derived from HMACKey, so every node of a cluster accepts them.
	DPoPNonceRequired bool
	// ClientSecretKey is the 32-byte key the secrets of client_secret_jwt
	// clients are sealed under (derive it from the master key with
	// secret.DeriveKey); every node of a cluster must use the same one.
	// Nil leaves client_secret_jwt unsupported.
	ClientSecretKey []byte
	// Directory caches tenants and clients across requests. Whoever
	// writes tenants or clients other than through the provider must tell
	// it (Directory.ForgetClients, Directory.ForgetTenant), on every node
	// of a cluster; a node does so for its store and its change bus. Nil
	// gives the provider a cache of its own, which only the provider's own
	// writes (dynamic client registration) and the entries' one-minute
	// lifetime keep current.
	Directory *Directory
	// Extensions are the node's extension instances; the provider asks it
	// for each tenant's grant types (extension.KindGrant), which serve
	// grant_type values this package does not know. Nil serves none.
	Extensions Extensions
}

// Provider is the OAuth 2.0 authorization server of every tenant. It is
// safe for concurrent use.
type Provider struct {
	d         Deps
	publicURL string
	oauth2    *fosite.Fosite
	storage   *storage
	dir       *Directory
	signer    *tokenSigner
	// jwks fetches clients' jwks_uri through the SSRF guard.
	clientJWKS *jwksFetcher
	// notifier posts logout tokens through the SSRF guard.
	notifier *http.Client
	// secretBox seals client_secret_jwt secrets; nil without
	// Deps.ClientSecretKey.
	secretBox *secret.Box
	// grantTypes lists the grant types the token endpoint serves, in the
	// order of discovery's grant_types_supported.
	grantTypes []string
	// sessionEnd is told of sessions end_session ends (crosslogout.go).
	sessionEnd SessionEndHook
}

// New builds the provider over d. It wires fosite explicitly rather than
// through compose's factories, so the handlers in play are visible here:
// the client credentials grant (wrapped by clientCredentialsGrant), the
// core token introspector and the revocation handler, all over one
// tenant-scoped storage and one JWT strategy.
func New(d Deps) (*Provider, error) {
	if d.Store == nil {
		return nil, errors.New("creating oauth provider: Deps.Store is required")
	}
	if d.Keys == nil {
		return nil, errors.New("creating oauth provider: Deps.Keys is required")
	}
	if d.Login == nil {
		return nil, errors.New("creating oauth provider: Deps.Login is required")
	}
	if len(d.HMACKey) < 32 {
		return nil, errors.New("creating oauth provider: Deps.HMACKey must be at least 32 bytes")
	}
	if d.RefreshTokenLifetime <= 0 {
		d.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	publicURL, err := checkPublicURL(d.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("creating oauth provider: %w", err)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Audit == nil {
		d.Audit = discardAudit{}
	}
	if d.AccessTokenLifetime <= 0 {
		d.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if d.MaxAccessTokenLifetime <= 0 {
		d.MaxAccessTokenLifetime = DefaultMaxAccessTokenLifetime
	}
	if d.AccessTokenLifetime > d.MaxAccessTokenLifetime {
		return nil, fmt.Errorf("creating oauth provider: access token lifetime %s exceeds the maximum %s", d.AccessTokenLifetime, d.MaxAccessTokenLifetime)
	}

	p := &Provider{
		d:         d,
		publicURL: publicURL,
		grantTypes: []string{
			string(fosite.GrantTypeAuthorizationCode),
			string(fosite.GrantTypeClientCredentials),
			string(fosite.GrantTypeRefreshToken),
			grantTypeDeviceCode,
			grantTypeTokenExchange,
			grantTypeJWTBearer,
			grantTypeSAML2Bearer,
		},
	}
	if d.ClientSecretKey != nil {
		if p.secretBox, err = secret.NewBox(d.ClientSecretKey); err != nil {
			return nil, fmt.Errorf("creating oauth provider: Deps.ClientSecretKey: %w", err)
		}
	}
	p.dir = d.Directory
	if p.dir == nil {
		p.dir = NewDirectory()
	}
	p.storage = &storage{st: d.Store, maxLifetime: d.MaxAccessTokenLifetime, dir: p.dir}
	p.signer = newTokenSigner(d.Keys)
	p.clientJWKS = newJWKSFetcher(d.AllowPrivateNetworks)
	p.notifier = safehttp.NewClient(d.AllowPrivateNetworks, backchannelTimeout, maxLogoutReplyBytes)

	cfg := &config{Config: &fosite.Config{
		AccessTokenLifespan:   d.AccessTokenLifetime,
		RefreshTokenLifespan:  d.RefreshTokenLifetime,
		AuthorizeCodeLifespan: authorizeCodeLifetime,
		IDTokenLifespan:       idTokenLifetime,
		GlobalSecret:          d.HMACKey,
		// A refresh token is issued to every client registered for the
		// refresh_token grant, without asking for offline_access.
		RefreshTokenScopes: []string{},
		// PKCE (RFC 7636) with S256 only; public clients must use it,
		// confidential ones too unless their settings say otherwise
		// (requirePKCE below).
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		// Nonces and states shorter than this are refused.
		MinParameterEntropy: 8,
		// Redirect URIs are compared exactly, and must be https except on
		// loopback; private-use schemes of native apps (RFC 8252 section 7.1)
		// are allowed.
		RedirectSecureChecker: fosite.IsRedirectURISecure,
		// Scopes and audiences are compared as exact strings: a client's
		// registered list bounds what it may request.
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: matchAudience,
		ClientSecretsHasher:      clientSecretHasher{},
		// RFC 9068 section 2.2.3: "scope" is a space-separated string.
		JWTScopeClaimKey:           jwt.JWTScopeFieldString,
		SendDebugMessagesToClients: false,
	}}
	cfg.ClientAuthenticationStrategy = p.authenticateClient

	opaque := oauth2.NewHMACSHAStrategy(&hmac.HMACStrategy{Config: cfg}, cfg)
	strategy := &accessTokenStrategy{DefaultJWTStrategy: &oauth2.DefaultJWTStrategy{
		Signer:          p.signer,
		HMACSHAStrategy: opaque,
		Config:          cfg,
	}}
	idHelper := &openid.IDTokenHandleHelper{IDTokenStrategy: &openid.DefaultStrategy{Signer: idTokenSigner{p.signer}, Config: cfg}}
	codeHandler := &oauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
		AuthorizeCodeStrategy:  strategy,
		CoreStorage:            p.storage,
		TokenRevocationStorage: p.storage,
		Config:                 cfg,
	}
	pkceHandler := &pkce.Handler{AuthorizeCodeStrategy: strategy, Storage: p.storage, Config: cfg}
	oidcHandler := &openid.OpenIDConnectExplicitHandler{
		OpenIDConnectRequestStorage:   p.storage,
		OpenIDConnectRequestValidator: openid.NewOpenIDConnectRequestValidator(idTokenSigner{p.signer}, cfg),
		Config:                        cfg,
		IDTokenHandleHelper:           idHelper,
	}
	refreshHandler := &oauth2.RefreshTokenGrantHandler{
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
		TokenRevocationStorage: p.storage,
		Config:                 cfg,
	}
	accessHelper := &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: p.storage, Config: cfg}
	cfg.AuthorizeEndpointHandlers = fosite.AuthorizeEndpointHandlers{
		pkceRequired{},
		codeHandler,
		pkceHandler,
		oidcHandler,
	}
	cfg.TokenEndpointHandlers = fosite.TokenEndpointHandlers{
		&clientCredentialsGrant{
			inner: &oauth2.ClientCredentialsGrantHandler{
				HandleHelper: &oauth2.HandleHelper{
					AccessTokenStrategy: strategy,
					AccessTokenStorage:  p.storage,
					Config:              cfg,
				},
				Config: cfg,
			},
		},
		ownGrantOnly{codeHandler},
		ownGrantOnly{refreshHandler},
		&deviceCodeGrant{
			p:       p,
			helper:  accessHelper,
			refresh: strategy,
			id:      idHelper,
			cfg:     cfg,
		},
		&extensionGrant{grantType: grantTypeTokenExchange, helper: accessHelper, cfg: cfg, decide: p.exchangeToken},
		&extensionGrant{grantType: grantTypeJWTBearer, helper: accessHelper, cfg: cfg, decide: p.bearerAssertion},
		&extensionGrant{grantType: grantTypeSAML2Bearer, helper: accessHelper, cfg: cfg, decide: p.samlBearerAssertion},
		ownGrantOnly{pkceHandler},
		ownGrantOnly{oidcHandler},
		ownGrantOnly{&openid.OpenIDConnectRefreshHandler{IDTokenHandleHelper: idHelper, Config: cfg}},
		&customGrant{p: p, helper: accessHelper, refresh: strategy, cfg: cfg},
	}
	cfg.TokenIntrospectionHandlers = fosite.TokenIntrospectionHandlers{
		&oauth2.CoreValidator{CoreStrategy: strategy, CoreStorage: p.storage, Config: cfg},
	}
	cfg.RevocationHandlers = fosite.RevocationHandlers{
		&oauth2.TokenRevocationHandler{
			TokenRevocationStorage: p.storage,
			RefreshTokenStrategy:   strategy,
			AccessTokenStrategy:    strategy,
		},
	}
	p.oauth2 = fosite.NewOAuth2Provider(p.storage, cfg)
	return p, nil
}

// checkPublicURL returns u without a trailing slash when it is an absolute
// http(s) URL without query or fragment.
func checkPublicURL(u string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("parsing public url: %w", err)
	}
	if (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" || parsed.RawQuery != "" || parsed.Fragment != "" || parsed.User != nil {
		return "", fmt.Errorf("checking public url %q: must be an absolute http(s) URL without user, query or fragment", u)
	}
	return strings.TrimRight(u, "/"), nil
}

// Issuer returns the issuer identifier of a tenant (RFC 8414 section 2):
// the public URL for the default tenant, {public_url}/t/{name} otherwise.
func (p *Provider) Issuer(tenantName string) string {
	if tenantName == store.DefaultTenantName {
		return p.publicURL
	}
	return p.publicURL + "/t/" + tenantName
}

// TokenInfo is what a valid access token says (RFC 9068 section 2.2).
type TokenInfo struct {
	// ID is the token's "jti".
	ID string
	// Issuer is the tenant's issuer ("iss").
	Issuer string
	// ClientID is the client the token was issued to ("client_id").
	ClientID string
	// Subject is "sub": the client id for the client credentials grant.
	Subject string
	// Scopes are the granted scopes ("scope").
	Scopes []string
	// Audience lists the resources the token is for ("aud"). A resource
	// server must check that it is one of them.
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// DPoPJKT is the thumbprint of the key a DPoP-bound token is bound to
	// (cnf.jkt, RFC 9449 section 6); empty for a bearer token.
	DPoPJKT string
	// CertThumbprint is the x5t#S256 of the client certificate a
	// certificate-bound token is bound to (RFC 8705 section 3), or empty.
	CertThumbprint string
	// attributes are the session's Attributes: the user attributes of a
	// federated attribute step, which UserInfo releases.
	attributes map[string]any
}

// HasScope reports whether scope was granted.
func (t TokenInfo) HasScope(scope string) bool {
	return slices.Contains(t.Scopes, scope)
}

// ValidateAccessToken checks a bearer access token presented to a resource
// of the tenant with id tenantID (RFC 6750 section 2.1): the token must be
// a JWT of type at+jwt signed by one of the tenant's published keys, or an
// opaque token of this server, not bound to a DPoP key, carry the
// tenant's issuer, be unexpired, be known to the tenant's store and not
// revoked, and belong to an enabled client. It returns an error wrapping
// ErrInvalidToken when the token is not valid, and another error when
// validity could not be decided (the store is unreachable). Checking the
// audience and the scopes is the caller's job.
func (p *Provider) ValidateAccessToken(ctx context.Context, tenantID, raw string) (TokenInfo, error) {
	info, err := p.validateAccessToken(ctx, tenantID, raw)
	if err == nil && info.DPoPJKT != "" {
		// A DPoP-bound token is never a bearer token (RFC 9449 section
		// 7.2); only the endpoints that check proofs accept it.
		return TokenInfo{}, fmt.Errorf("validating access token: a DPoP-bound token used as a bearer token: %w", ErrInvalidToken)
	}
	if err == nil && info.CertThumbprint != "" && !certBindingHolds(ctx, info.CertThumbprint) {
		// RFC 8705 section 3: only over a connection with the certificate.
		return TokenInfo{}, fmt.Errorf("validating access token: a certificate-bound token without its certificate: %w", ErrInvalidToken)
	}
	return info, err
}

// validateAccessToken is ValidateAccessToken for any token, bound or not.
func (p *Provider) validateAccessToken(ctx context.Context, tenantID, raw string) (TokenInfo, error) {
	t, enabled, err := p.dir.tenant(ctx, tenantID, false, func(ctx context.Context) (store.Tenant, error) {
		return p.d.Store.GetTenant(ctx, tenantID)
	}, p.tenantInfo)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return TokenInfo{}, fmt.Errorf("validating access token: unknown tenant: %w", ErrInvalidToken)
	case err != nil:
		return TokenInfo{}, fmt.Errorf("validating access token: loading tenant: %w", err)
	case !enabled:
		return TokenInfo{}, fmt.Errorf("validating access token: tenant disabled: %w", ErrInvalidToken)
	}
	ctx = withTenant(ctx, t)
	_, ar, err := p.oauth2.IntrospectToken(ctx, raw, fosite.AccessToken, newSession())
	if err != nil {
		if errors.Is(err, errStorage) {
			return TokenInfo{}, fmt.Errorf("validating access token: %w", err)
		}
		return TokenInfo{}, fmt.Errorf("validating access token: %w", ErrInvalidToken)
	}
	return tokenInfo(ar), nil
}

// tokenInfo reads a validated token's request.
func tokenInfo(ar fosite.Requester) TokenInfo {
	info := TokenInfo{
		ClientID: ar.GetClient().GetID(),
		Scopes:   slices.Clone([]string(ar.GetGrantedScopes())),
		Audience: slices.Clone([]string(ar.GetGrantedAudience())),
	}
	if s, ok := ar.GetSession().(*session); ok {
		info.DPoPJKT = jktOf(s)
		info.CertThumbprint = x5tOf(s)
		info.Subject = s.Subject
		info.attributes = s.Attributes
		info.ExpiresAt = s.GetExpiresAt(fosite.AccessToken)
		if c := s.JWTClaims; c != nil {
			info.ID, info.Issuer, info.IssuedAt = c.JTI, c.Issuer, c.IssuedAt
		}
	}
	return info
}

// config is fosite's configuration with the values that depend on the
// tenant of the request computed from the context.
type config struct {
	*fosite.Config
}

// GetAccessTokenIssuer returns the issuer of the request's tenant: the
// "iss" of access tokens (RFC 9068 section 2.2).
func (c *config) GetAccessTokenIssuer(ctx context.Context) string {
	if t, ok := tenantFrom(ctx); ok {
		return t.issuer
	}
	return ""
}

// GetIDTokenIssuer returns the same issuer as GetAccessTokenIssuer.
func (c *config) GetIDTokenIssuer(ctx context.Context) string {
	return c.GetAccessTokenIssuer(ctx)
}

// GetTokenURLs returns the request tenant's token endpoint, the audience of
// client assertions (RFC 7523 section 3).
func (c *config) GetTokenURLs(ctx context.Context) []string {
	if t, ok := tenantFrom(ctx); ok {
		return []string{t.issuer + PathToken}
	}
	return nil
}

type discardAudit struct{}

func (discardAudit) Publish(event.Event) bool { return true }

var (
	_ fosite.Configurator                         = (*config)(nil)
	_ fosite.AccessTokenIssuerProvider            = (*config)(nil)
	_ Auditor                                     = discardAudit{}
	_ KeySource                                   = (*keys.Manager)(nil)
	_ Store                                       = (store.Store)(nil)
	_ fosite.ClientAuthenticationStrategyProvider = (*config)(nil)
)
