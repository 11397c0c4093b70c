package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Client authentication methods (RFC 6749 section 2.3.1; the names are
// those of RFC 7591 section 2, "token_endpoint_auth_method").
const (
	authMethodBasic = "client_secret_basic"
	authMethodPost  = "client_secret_post"
	authMethodNone  = "none"
)

// authMethodsSupported lists, for discovery, the methods a confidential
// client may authenticate with.
var authMethodsSupported = []string{authMethodBasic, authMethodPost, authMethodPrivateKeyJWT}

// authMethods lists, for discovery, the methods a confidential client may
// authenticate with on this node: client_secret_jwt too when the node can
// seal secrets (Deps.ClientSecretKey).
func (p *Provider) authMethods() []string {
	out := slices.Clone(authMethodsSupported)
	if p.secretBox != nil {
		out = append(out, authMethodSecretJWT)
	}
	if p.d.MutualTLS {
		out = append(out, authMethodTLS)
	}
	if p.d.SelfSignedMutualTLS {
		out = append(out, authMethodSelfSignedTLS)
	}
	return out
}

// client adapts a store.Client to fosite.Client. It never carries more of
// the stored client than fosite asks for.
type client struct {
	id           string
	secretHash   string
	public       bool
	grantTypes   []string
	scopes       []string
	audience     []string
	authMethod   string
	redirectURIs []string
	respTypes    []string
	// lifetime, when positive, overrides the access token lifetime.
	lifetime    time.Duration
	name        string
	firstParty  bool
	requirePKCE bool
	// issuer is the tenant's issuer.
	issuer string
	// postLogout lists the post_logout_redirect_uris (OpenID Connect
	// RP-Initiated Logout 1.0 section 3.1).
	postLogout []string
	// keys are the client's registered public keys (jwks or jwks_uri).
	keys clientKeys
	// authSigningAlg and requestObjectAlg pin the algorithms of the
	// client's assertions and request objects; empty allows every
	// asymmetric algorithm.
	authSigningAlg   string
	requestObjectAlg string
	// requirePAR makes the client push its authorization requests.
	requirePAR bool
	// opaqueTokens makes its access tokens opaque rather than JWTs
	// (ClientSettingAccessTokenFormat).
	opaqueTokens bool
	// requireDPoP makes its token requests need a DPoP proof
	// (ClientSettingDPoPBoundAccessTokens).
	requireDPoP bool
	// settings are the stored client's settings (tls_client_auth names
	// its certificate there).
	settings map[string]any
}

// ClientSettingAccessTokenFormat is the key in store.Client.Settings of
// the client's access token format: "jwt" (the default; RFC 9068) or
// "opaque", a random reference that only introspection (RFC 7662), the
// UserInfo endpoint and this server's own resources can read. Use opaque
// tokens when resource servers must not read the claims, or when every
// use must be checked against revocation.
const ClientSettingAccessTokenFormat = "access_token_format"

// Values of ClientSettingAccessTokenFormat.
const (
	AccessTokenFormatJWT    = "jwt"
	AccessTokenFormatOpaque = "opaque"
)

func newClient(c store.Client, maxLifetime time.Duration) *client {
	respTypes := c.ResponseTypes
	if len(respTypes) == 0 && slices.Contains(c.GrantTypes, string(fosite.GrantTypeAuthorizationCode)) {
		// RFC 7591 section 2: response_types defaults to "code".
		respTypes = []string{"code"}
	}
	return &client{
		id:           c.ClientID,
		secretHash:   c.SecretHash,
		public:       c.Public,
		grantTypes:   c.GrantTypes,
		scopes:       c.Scopes,
		audience:     c.Audience,
		authMethod:   c.TokenEndpointAuthMethod,
		redirectURIs: c.RedirectURIs,
		respTypes:    respTypes,
		lifetime:     settingLifetime(c.Settings[ClientSettingAccessTokenLifetime], maxLifetime),
		name:         c.Name,
		firstParty:   c.FirstParty,
		requirePKCE:  c.Public || c.Settings[ClientSettingRequirePKCE] != false,
		postLogout:   settingStrings(c.Settings[ClientSettingPostLogoutRedirectURIs]),
		keys:         readClientKeys(c.Settings),

		authSigningAlg:   settingString(c.Settings, ClientSettingTokenEndpointAuthSigningAlg),
		requestObjectAlg: settingString(c.Settings, ClientSettingRequestObjectSigningAlg),
		requirePAR:       c.Settings[ClientSettingRequirePAR] == true,
		opaqueTokens:     settingString(c.Settings, ClientSettingAccessTokenFormat) == AccessTokenFormatOpaque,
		requireDPoP:      c.Settings[ClientSettingDPoPBoundAccessTokens] == true,
		settings:         c.Settings,
	}
}

// ClientSettingPostLogoutRedirectURIs is the key in store.Client.Settings
// of the URIs the client may ask to be sent to after logout (a JSON array
// of strings), compared exactly.
const ClientSettingPostLogoutRedirectURIs = "post_logout_redirect_uris"

// settingStrings reads a list of strings from a client setting.
func settingStrings(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// GetResponseModes lists the response modes every client may use
// (fosite.ResponseModeClient): query, fragment and form_post (OAuth 2.0
// Form Post Response Mode).
func (c *client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFragment, fosite.ResponseModeFormPost}
}

// displayName is how the consent page names the client.
func (c *client) displayName() string {
	if c.name != "" {
		return c.name
	}
	return c.id
}

// settingLifetime reads a lifetime in seconds from a client setting: a
// JSON number (float64 once decoded), an integer, or a json.Number. It
// returns 0 (no override) for anything else or anything below one second,
// and caps the result at maxLifetime.
func settingLifetime(v any, maxLifetime time.Duration) time.Duration {
	var secs float64
	switch n := v.(type) {
	case float64:
		secs = n
	case int:
		secs = float64(n)
	case int64:
		secs = float64(n)
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return 0
		}
		secs = f
	default:
		return 0
	}
	if math.IsNaN(secs) || secs < 1 {
		return 0
	}
	if secs >= maxLifetime.Seconds() {
		return maxLifetime
	}
	return time.Duration(secs) * time.Second
}

// GetID returns the client_id.
func (c *client) GetID() string { return c.id }

// GetHashedSecret returns the stored secret hash (kernel/secret).
func (c *client) GetHashedSecret() []byte { return []byte(c.secretHash) }

// GetRedirectURIs returns the registered redirect URIs.
func (c *client) GetRedirectURIs() []string { return c.redirectURIs }

// GetGrantTypes returns the grant types the client may use.
func (c *client) GetGrantTypes() fosite.Arguments { return c.grantTypes }

// GetResponseTypes returns the registered response types.
func (c *client) GetResponseTypes() fosite.Arguments { return c.respTypes }

// GetScopes returns the scopes the client may request.
func (c *client) GetScopes() fosite.Arguments { return c.scopes }

// IsPublic reports whether the client is public (RFC 6749 section 2.1).
func (c *client) IsPublic() bool { return c.public }

// GetAudience returns the audiences the client may request.
// The tenant's own issuer is always allowed: it is the default audience
// of tokens for a client that registered none, and a refreshed grant keeps
// its audience.
func (c *client) GetAudience() fosite.Arguments {
	if c.issuer == "" || slices.Contains(c.audience, c.issuer) {
		return c.audience
	}
	return append(slices.Clone(c.audience), c.issuer)
}

// registeredAudience returns the audiences the client registered, without
// the tenant's issuer.
func registeredAudience(fc fosite.Client) []string {
	if c, ok := fc.(*client); ok {
		return c.audience
	}
	return fc.GetAudience()
}

// GetEffectiveLifespan returns the client's access token lifetime for the
// client credentials grant, or fallback.
func (c *client) GetEffectiveLifespan(gt fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	if gt == fosite.GrantTypeClientCredentials && tt == fosite.AccessToken && c.lifetime > 0 {
		return c.lifetime
	}
	return fallback
}

// clientSecretHasher is fosite's Hasher over kernel/secret: a SHA-256 of
// the 256-bit random secret, compared in constant time. A password hash
// (bcrypt, argon2id) per token request would cap throughput for no gain on
// high-entropy secrets; see RATIONALE.md, "Why are client secrets hashed
// with SHA-256".
type clientSecretHasher struct{}

// errSecretMismatch is what Compare returns for a wrong secret.
var errSecretMismatch = errors.New("client secret does not match")

// Compare returns nil when data is the secret that hash was made from.
func (clientSecretHasher) Compare(ctx context.Context, hash, data []byte) error {
	if secret.VerifyClientSecret(string(data), string(hash)) {
		return nil
	}
	return errSecretMismatch
}

// Hash returns the stored form of a client secret.
func (clientSecretHasher) Hash(ctx context.Context, data []byte) ([]byte, error) {
	return []byte(secret.HashClientSecret(string(data))), nil
}

// unknownClientHash is compared against when the client is unknown, so the
// answer takes as long as for a wrong secret.
var unknownClientHash = []byte(secret.HashClientSecret("latch-unknown-client"))

// requestInfo collects, while fosite handles a request, what the audit
// event needs: the client id claimed, the authentication method used, and
// why authentication failed. It never holds the secret.
type requestInfo struct {
	clientID string
	method   string
	reason   string
	// ip and headers (lowercase names, without Authorization and Cookie)
	// are passed to grant type extensions.
	ip      string
	headers map[string][]string
	// custom is a grant type extension's answer, from the token endpoint
	// handler's Handle to its Populate.
	custom *abi.TokenResponse
}

type requestInfoKey struct{}

func withRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// errMultipleAuthMethods answers a request that authenticates in more than
// one way (RFC 6749 section 2.3: "The client MUST NOT use more than one
// authentication method in each request").
var errMultipleAuthMethods = fosite.ErrInvalidRequest.WithHint("The client sent its credentials in more than one way.")

// authenticateClient is fosite's ClientAuthenticationStrategy for this
// slice. It implements RFC 6749 section 2.3.1: client_secret_basic (the
// form-urlencoded id and secret inside HTTP Basic) and client_secret_post
// (client_id and client_secret in the body), private_key_jwt (RFC 7523
// section 2.2, authenticateAssertion), plus "none" (client_id alone)
// for public clients, which the grant then refuses. A client whose
// token_endpoint_auth_method is set must use that method. Every failure
// is the same invalid_client, whatever the cause; the cause goes to the
// audit event.
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	info := requestInfoFrom(ctx)
	if form.Get("client_assertion_type") != "" || form.Get("client_assertion") != "" {
		return p.authenticateAssertion(ctx, r, form, info)
	}
	id, sec, method, err := clientCredentials(r, form)
	info.clientID, info.method = id, method
	if err != nil {
		info.reason = "malformed or missing client credentials"
		return nil, err
	}
	hasher := clientSecretHasher{}
	cl, err := p.storage.client(ctx, id)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		_ = hasher.Compare(ctx, unknownClientHash, []byte(sec))
		info.reason = "unknown or disabled client"
		return nil, fosite.ErrInvalidClient
	case err != nil:
		return nil, err
	}
	if method == authMethodNone && cl.authMethod == authMethodTLS {
		return p.authenticateTLS(ctx, cl, info)
	}
	if method == authMethodNone && cl.authMethod == authMethodSelfSignedTLS {
		return p.authenticateSelfSignedTLS(ctx, cl, info)
	}
	if cl.authMethod != "" && cl.authMethod != method {
		info.reason = "client must authenticate with " + cl.authMethod
		return nil, fosite.ErrInvalidClient
	}
	switch {
	case method == authMethodNone && cl.public:
		return cl, nil
	case method == authMethodNone:
		info.reason = "confidential client sent no secret"
		return nil, fosite.ErrInvalidClient
	case cl.public:
		info.reason = "public client sent a secret"
		return nil, fosite.ErrInvalidClient
	}
	if err := hasher.Compare(ctx, cl.GetHashedSecret(), []byte(sec)); err != nil {
		info.reason = "wrong client secret"
		return nil, fosite.ErrInvalidClient
	}
	return cl, nil
}

// clientCredentials reads the client's credentials and names the method
// used. Basic credentials are form-urlencoded (RFC 6749 section 2.3.1), so
// they are decoded before use.
func clientCredentials(r *http.Request, form url.Values) (id, sec, method string, err error) {
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "basic") {
			return "", "", authMethodBasic, fosite.ErrInvalidClient
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return "", "", authMethodBasic, fosite.ErrInvalidClient
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", "", authMethodBasic, fosite.ErrInvalidClient
		}
		if id, err = url.QueryUnescape(user); err != nil || id == "" {
			return "", "", authMethodBasic, fosite.ErrInvalidClient
		}
		if sec, err = url.QueryUnescape(pass); err != nil {
			return "", "", authMethodBasic, fosite.ErrInvalidClient
		}
		if formSecret != "" || (formID != "" && formID != id) {
			return id, "", authMethodBasic, errMultipleAuthMethods
		}
		return id, sec, authMethodBasic, nil
	}
	switch {
	case formID == "":
		return "", "", "", fosite.ErrInvalidClient
	case formSecret == "":
		return formID, "", authMethodNone, nil
	default:
		return formID, formSecret, authMethodPost, nil
	}
}

var (
	_ fosite.Client                         = (*client)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*client)(nil)
	_ fosite.Hasher                         = clientSecretHasher{}
	_ fosite.ClientAuthenticationStrategy   = (*Provider)(nil).authenticateClient
)
