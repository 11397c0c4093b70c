package oauth

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/ory/fosite"

	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
)

// Paths of a tenant's endpoints, below its base: "" for the default
// tenant, "/t/{tenant}" for the others. The issuer is the public URL plus
// the base.
const (
	// PathOpenIDConfiguration is OpenID Connect Discovery 1.0 section 4.
	PathOpenIDConfiguration = "/.well-known/openid-configuration"
	// PathAuthorizationServer is RFC 8414 section 3. For a tenant under
	// /t/{tenant} it is also served at the form of section 3.1:
	// /.well-known/oauth-authorization-server/t/{tenant}.
	PathAuthorizationServer = "/.well-known/oauth-authorization-server"
	// PathJWKS serves the tenant's JWK Set (RFC 7517 section 5), the
	// jwks_uri of discovery.
	PathJWKS = "/.well-known/jwks.json"
	// PathToken is the token endpoint (RFC 6749 section 3.2).
	PathToken = "/oauth2/token" //nolint:gosec // G101: a URL path, not a credential.
	// PathIntrospect is the introspection endpoint (RFC 7662 section 2).
	PathIntrospect = "/oauth2/introspect"
	// PathRevoke is the revocation endpoint (RFC 7009 section 2).
	PathRevoke = "/oauth2/revoke"
)

// metadataMaxAge is how long clients may cache discovery documents and the
// JWK Set. Prepare a key (keys.Manager.PrepareNext) at least this long
// before rotating to it, so every cached JWK Set already holds it.
const metadataMaxAge = "public, max-age=300"

// repeatableParams may appear more than once in a request (RFC 8707
// section 2, RFC 8693 section 2.1); no other parameter may (RFC 6749
// section 3.2).
var repeatableParams = map[string]bool{"resource": true, "audience": true}

// tenantHandler serves a request for a resolved tenant; ctx carries it.
type tenantHandler func(ctx context.Context, c *fiber.Ctx, t tenantInfo) error

// Mount adds the provider's routes to app, for the default tenant at the
// root and for every other tenant under /t/:tenant:
//
//	GET  {base}/.well-known/openid-configuration
//	GET  {base}/.well-known/oauth-authorization-server
//	GET  /.well-known/oauth-authorization-server/t/:tenant   (RFC 8414 section 3.1)
//	GET  {base}/.well-known/jwks.json
//	POST {base}/oauth2/token
//	POST {base}/oauth2/introspect
//	POST {base}/oauth2/revoke
//	POST {base}/oauth2/par
//	POST {base}/oauth2/device_authorization
//	GET  {base}/device, POST {base}/device, POST {base}/device/consent
//	POST {base}/oauth2/register
//	GET, PUT, DELETE {base}/oauth2/register/:client_id
//	GET  {base}/oauth2/check_session
//
// GET routes also answer HEAD. Any other method on these paths gets 405
// with an RFC 6749 error body and an Allow header.
func (p *Provider) Mount(app *fiber.App) {
	const both = "GET+POST"
	for _, base := range []struct {
		prefix string
		named  bool
	}{{"", false}, {"/t/:tenant", true}} {
		for _, rt := range []struct {
			method, path string
			h            tenantHandler
		}{
			{fiber.MethodGet, PathOpenIDConfiguration, p.discovery},
			{fiber.MethodGet, PathAuthorizationServer, p.discovery},
			{fiber.MethodGet, PathJWKS, p.jwks},
			{both, PathAuthorize, p.authorize},
			{fiber.MethodGet, PathAuthorizeResume, p.resume},
			{fiber.MethodPost, PathConsent, p.consent},
			{fiber.MethodPost, PathToken, p.token},
			{fiber.MethodPost, PathIntrospect, p.introspect},
			{fiber.MethodPost, PathRevoke, p.revoke},
			{fiber.MethodPost, PathPAR, p.par},
			{fiber.MethodPost, PathDeviceAuthorization, p.deviceAuthorization},
			{both, PathDevice, p.device},
			{fiber.MethodPost, PathDeviceConsent, p.deviceConsent},
			{fiber.MethodPost, PathRegister, p.register},
			{both, PathUserInfo, p.userinfo},
			{both, PathEndSession, p.endSession},
			{fiber.MethodGet, PathCheckSession, p.checkSession},
		} {
			h := p.serve(base.named, rt.h)
			switch rt.method {
			case fiber.MethodGet:
				app.Get(base.prefix+rt.path, h) // and HEAD
				app.All(base.prefix+rt.path, methodNotAllowed("GET, HEAD"))
			case both:
				app.Get(base.prefix+rt.path, h)
				app.Post(base.prefix+rt.path, h)
				app.All(base.prefix+rt.path, methodNotAllowed("GET, HEAD, POST"))
			default:
				app.Post(base.prefix+rt.path, h)
				app.All(base.prefix+rt.path, methodNotAllowed(fiber.MethodPost))
			}
		}
	}
	for _, base := range []struct {
		prefix string
		named  bool
	}{{"", false}, {"/t/:tenant", true}} {
		path := base.prefix + PathRegister + "/:client_id"
		h := p.serve(base.named, p.manage)
		app.Get(path, h)
		app.Put(path, h)
		app.Delete(path, h)
		app.All(path, methodNotAllowed("GET, HEAD, PUT, DELETE"))
	}
	app.Get(PathAuthorizationServer+"/t/:tenant", p.serve(true, p.discovery))
	app.All(PathAuthorizationServer+"/t/:tenant", methodNotAllowed("GET, HEAD"))
}

// serve resolves the tenant and runs h.
func (p *Provider) serve(named bool, h tenantHandler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		t, err := p.resolveTenant(c, named)
		if err != nil {
			return p.writeError(c, err)
		}
		return h(withPeerCert(withTenant(c.UserContext(), t), c), c, t)
	}
}

// metadata is the authorization server metadata (RFC 8414 section 2), also
// served as the OpenID Provider metadata (OpenID Connect Discovery 1.0
// section 3). It lists only what is implemented.
type metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserInfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
	DeviceAuthorizationEndpoint                string   `json:"device_authorization_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint"`
	BackchannelLogoutSupported                 bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported          bool     `json:"backchannel_logout_session_supported"`
	FrontchannelLogoutSupported                bool     `json:"frontchannel_logout_supported"`
	FrontchannelLogoutSessionSupported         bool     `json:"frontchannel_logout_session_supported"`
	CheckSessionIframe                         string   `json:"check_session_iframe"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported"`
	TLSClientCertificateBoundAccessTokens      bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests"`
	RequestObjectSigningAlgValuesSupported     []string `json:"request_object_signing_alg_values_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

func (p *Provider) discovery(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	c.Set(fiber.HeaderCacheControl, metadataMaxAge)
	algs := make([]string, len(signatureAlgorithms))
	for i, a := range signatureAlgorithms {
		algs[i] = string(a)
	}
	return c.JSON(metadata{
		Issuer:                                     t.issuer,
		AuthorizationEndpoint:                      t.issuer + PathAuthorize,
		TokenEndpoint:                              t.issuer + PathToken,
		UserInfoEndpoint:                           t.issuer + PathUserInfo,
		JWKSURI:                                    t.issuer + PathJWKS,
		IntrospectionEndpoint:                      t.issuer + PathIntrospect,
		RevocationEndpoint:                         t.issuer + PathRevoke,
		EndSessionEndpoint:                         t.issuer + PathEndSession,
		ScopesSupported:                            []string{"openid", "profile", "email", "phone", "offline_access"},
		ClaimsSupported:                            []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash", "c_hash", "name", "given_name", "family_name", "preferred_username", "updated_at", "email", "email_verified", "phone_number"},
		GrantTypesSupported:                        p.grantTypes,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           algs,
		CodeChallengeMethodsSupported:              []string{"S256"},
		PromptValuesSupported:                      []string{"none", "login", "consent", "select_account"},
		TokenEndpointAuthMethodsSupported:          append(p.authMethods(), authMethodNone),
		IntrospectionEndpointAuthMethodsSupported:  p.authMethods(),
		RevocationEndpointAuthMethodsSupported:     p.authMethods(),
		TokenEndpointAuthSigningAlgValuesSupported: p.authSigningAlgs(),
		PushedAuthorizationRequestEndpoint:         t.issuer + PathPAR,
		DeviceAuthorizationEndpoint:                t.issuer + PathDeviceAuthorization,
		RegistrationEndpoint:                       t.issuer + PathRegister,
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
		FrontchannelLogoutSupported:                true,
		FrontchannelLogoutSessionSupported:         true,
		CheckSessionIframe:                         t.issuer + PathCheckSession,
		DPoPSigningAlgValuesSupported:              dpopAlgorithmNames(),
		TLSClientCertificateBoundAccessTokens:      p.d.MutualTLS || p.d.SelfSignedMutualTLS,
		RequestObjectSigningAlgValuesSupported:     assertionAlgorithmNames(),
		// Request objects by value, and request_uri from the pushed
		// authorization request endpoint only.
		RequestParameterSupported: true,
	})
}

// jwks serves the tenant's published keys: active, next, and retiring keys
// within their overlap.
func (p *Provider) jwks(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	set, err := p.d.Keys.PublicJWKS(ctx, t.id)
	if err != nil {
		return p.writeError(c, errors.Join(errStorage, err))
	}
	c.Set(fiber.HeaderCacheControl, metadataMaxAge)
	return c.JSON(set)
}

// token serves the token endpoint (RFC 6749 section 3.2).
func (p *Provider) token(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	info := &requestInfo{}
	ctx = withRequestInfo(ctx, info)
	r, form, err := formRequest(ctx, c)
	if err != nil {
		return p.deny(c, t, info, "", err)
	}
	info.ip = c.IP()
	gt := form.Get("grant_type")
	switch {
	case gt == "":
		return p.deny(c, t, info, gt, fosite.ErrInvalidRequest.WithHint("The grant_type parameter is required."))
	case !slices.Contains(p.grantTypes, gt) && (!p.isExtensionGrantType(gt) || !p.customGrantTypes(t.name)):
		return p.deny(c, t, info, gt, fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported.", truncate(gt, 64)))
	case p.isExtensionGrantType(gt):
		// Only grant type extensions are shown the headers; copying them
		// for every token request was a twentieth of its cost.
		info.headers = safeHeaders(c)
	}
	proof, err := p.tokenDPoP(c, t)
	if err != nil {
		return p.deny(c, t, info, gt, err)
	}
	if err := p.tokenDPoPNonce(ctx, c, t, r, form, proof); err != nil {
		return p.deny(c, t, info, gt, err)
	}
	ar, err := p.oauth2.NewAccessRequest(ctx, r, newSession())
	if err != nil {
		return p.deny(c, t, info, gt, err)
	}
	if proof != nil {
		if err := p.useDPoPProof(ctx, t, *proof); err != nil {
			return p.deny(c, t, info, gt, err)
		}
	}
	tokenType, err := bindDPoP(ar, proof)
	if err != nil {
		return p.deny(c, t, info, gt, err)
	}
	bindCertificate(ctx, ar, info)
	resp, err := p.oauth2.NewAccessResponse(ctx, ar)
	if err != nil {
		return p.deny(c, t, info, gt, err)
	}
	resp.SetTokenType(tokenType)
	body := resp.ToMap()
	if s, _ := body["scope"].(string); s == "" {
		delete(body, "scope")
	}
	p.auditIssue(c, t, ar, gt)
	noStore(c)
	return c.JSON(body)
}

// introspect serves token introspection (RFC 7662). The caller
// authenticates as a confidential client of the tenant; any such client
// may introspect any of the tenant's tokens.
func (p *Provider) introspect(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	ctx = withRequestInfo(ctx, &requestInfo{})
	r, form, err := formRequest(ctx, c)
	if err != nil {
		return p.writeError(c, err)
	}
	cl, err := p.authenticateClient(ctx, r, form)
	if err != nil {
		return p.writeError(c, err)
	}
	if cl.IsPublic() {
		return p.writeError(c, fosite.ErrInvalidClient)
	}
	token := form.Get("token")
	if token == "" {
		return p.writeError(c, fosite.ErrInvalidRequest.WithHint("The token parameter is required."))
	}
	noStore(c)
	_, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.TokenUse(form.Get("token_type_hint")), newSession())
	switch {
	case errors.Is(err, errStorage):
		return p.writeError(c, err)
	case err != nil:
		// RFC 7662 section 2.2: nothing but "active" for a token that is
		// not active, whatever the reason.
		return c.JSON(fiber.Map{"active": false})
	}
	return c.JSON(introspection(ar))
}

// introspection is the response of RFC 7662 section 2.2 for an active
// access token.
func introspection(ar fosite.Requester) fiber.Map {
	info := tokenInfo(ar)
	m := fiber.Map{
		"active":     true,
		"token_type": "Bearer",
		"client_id":  info.ClientID,
		"sub":        info.Subject,
		"iss":        info.Issuer,
		"aud":        info.Audience,
		"exp":        info.ExpiresAt.Unix(),
		"iat":        info.IssuedAt.Unix(),
		"jti":        info.ID,
	}
	if len(info.Scopes) > 0 {
		m["scope"] = strings.Join(info.Scopes, " ")
	}
	if s, ok := ar.GetSession().(*session); ok && s.Username != "" {
		m["username"] = s.Username
	}
	cnf := fiber.Map{}
	if info.DPoPJKT != "" {
		// RFC 9449 section 6.2.
		m["token_type"] = tokenTypeDPoP
		cnf["jkt"] = info.DPoPJKT
	}
	if info.CertThumbprint != "" {
		// RFC 8705 section 3.2.
		cnf[cnfX5T] = info.CertThumbprint
	}
	if len(cnf) > 0 {
		m["cnf"] = cnf
	}
	return m
}

// revoke serves token revocation (RFC 7009). An unknown, expired or already
// revoked token is a success (section 2.2); a token of another client is
// unauthorized_client.
func (p *Provider) revoke(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	info := &requestInfo{}
	ctx = withRequestInfo(ctx, info)
	r, form, err := formRequest(ctx, c)
	if err != nil {
		return p.writeError(c, err)
	}
	if form.Get("token") == "" {
		return p.writeError(c, fosite.ErrInvalidRequest.WithHint("The token parameter is required."))
	}
	if err := p.oauth2.NewRevocationRequest(ctx, r); err != nil {
		return p.writeError(c, err)
	}
	detail := map[string]any{}
	if hint := form.Get("token_type_hint"); hint != "" {
		detail["token_type_hint"] = truncate(hint, 64)
	}
	p.publish(c, t, event.Ref("client", truncate(info.clientID, maxAuditID)), ActionTokenRevoke, "", event.OutcomeSuccess, detail)
	noStore(c)
	return c.SendStatus(http.StatusOK)
}

// formRequest reads the request body as the form of RFC 6749 section 3.2
// and returns it with an *http.Request for fosite that carries ctx, the
// form and the Authorization header, and nothing else of the request.
// Parameters without a value are dropped (section 3.1); a repeated
// parameter is invalid_request (section 3.2), except those of
// repeatableParams.
func formRequest(ctx context.Context, c *fiber.Ctx) (*http.Request, url.Values, error) {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationForm {
		return nil, nil, fosite.ErrInvalidRequest.WithHint("The request body must be application/x-www-form-urlencoded.")
	}
	form, err := url.ParseQuery(string(c.Body()))
	if err != nil {
		return nil, nil, fosite.ErrInvalidRequest.WithHint("The request body is not a valid form.")
	}
	for k, vs := range form {
		vs = slices.DeleteFunc(vs, func(v string) bool { return v == "" })
		switch {
		case len(vs) == 0:
			delete(form, k)
		case len(vs) > 1 && !repeatableParams[k]:
			return nil, nil, fosite.ErrInvalidRequest.WithHintf("The parameter %q is repeated.", truncate(k, 64))
		default:
			form[k] = vs
		}
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", http.NoBody)
	if err != nil {
		return nil, nil, err
	}
	r.Header.Set(fiber.HeaderContentType, mt)
	if a := c.Get(fiber.HeaderAuthorization); a != "" {
		r.Header.Set(fiber.HeaderAuthorization, a)
	}
	r.Form, r.PostForm = form, form
	return r, form, nil
}

// errorBody is the error response of RFC 6749 section 5.2.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// rfcErrors are the error codes this package answers with: RFC 6749
// section 5.2, RFC 7009 section 2.2.1 and RFC 8707 section 2.
var rfcErrors = map[string]bool{
	"invalid_request":           true,
	"invalid_client":            true,
	"invalid_grant":             true,
	"unauthorized_client":       true,
	"unsupported_grant_type":    true,
	"invalid_scope":             true,
	"invalid_target":            true,
	"invalid_request_object":    true,
	"invalid_request_uri":       true,
	"request_uri_not_supported": true,
	"unsupported_response_type": true,
	"authorization_pending":     true,
	"slow_down":                 true,
	"expired_token":             true,
	"access_denied":             true,
	"invalid_redirect_uri":      true,
	"invalid_client_metadata":   true,
	"invalid_dpop_proof":        true,
	"use_dpop_nonce":            true,
	"unsupported_token_type":    true,
	"server_error":              true,
	"temporarily_unavailable":   true,
}

// describe maps err to a status, an RFC error code and a description safe
// to send. Unexpected errors become server_error and store failures
// temporarily_unavailable; their causes are never sent.
func describe(err error) (status int, code, desc string) {
	if errors.Is(err, errStorage) {
		return http.StatusServiceUnavailable, "temporarily_unavailable", "The server cannot handle the request now; try again later."
	}
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		return http.StatusInternalServerError, "server_error", "The server failed to handle the request."
	}
	e := *rfc // GetDescription may compute fields; never touch a shared sentinel
	status, code = e.CodeField, e.ErrorField
	if !rfcErrors[code] {
		switch {
		case status >= 500:
			code = "server_error"
		case status == http.StatusUnauthorized:
			code = "invalid_client"
		default:
			code = "invalid_request"
		}
	}
	switch code {
	case "server_error":
		return http.StatusInternalServerError, code, "The server failed to handle the request."
	case "temporarily_unavailable":
		return http.StatusServiceUnavailable, code, "The server cannot handle the request now; try again later."
	case "invalid_client":
		// One answer for every authentication failure.
		return http.StatusUnauthorized, code, "Client authentication failed."
	}
	if status < 400 || status >= 500 {
		status = http.StatusBadRequest
	}
	return status, code, sanitizeDescription(e.GetDescription())
}

// writeError answers err in the form of RFC 6749 section 5.2. 5xx answers
// are logged with their cause.
func (p *Provider) writeError(c *fiber.Ctx, err error) error {
	status, code, desc := describe(err)
	if status >= 500 {
		p.d.Log.ErrorContext(c.UserContext(), "oauth request failed",
			slog.String("request_id", server.RequestID(c)), slog.String("path", c.Route().Path),
			slog.Int("status", status), slog.Any("err", err))
	}
	noStore(c)
	if code == "invalid_client" {
		// RFC 6749 section 5.2 and RFC 7235 section 3.1.
		c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="latch", charset="UTF-8"`)
	}
	return c.Status(status).JSON(errorBody{Error: code, Description: desc})
}

// methodNotAllowed answers other methods than allow on an OAuth path.
func methodNotAllowed(allow string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		noStore(c)
		c.Set(fiber.HeaderAllow, allow)
		return c.Status(http.StatusMethodNotAllowed).JSON(errorBody{
			Error:       "invalid_request",
			Description: "The endpoint only accepts " + allow + ".",
		})
	}
}

// noStore forbids caching of token responses and errors (RFC 6749 section
// 5.1).
func noStore(c *fiber.Ctx) {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
}

// sanitizeDescription keeps error_description within the characters RFC
// 6749 section 5.2 allows (%x20-21 / %x23-5B / %x5D-7E) and at most 512
// bytes.
func sanitizeDescription(s string) string {
	s = truncate(s, 512)
	b := []byte(s)
	for i, ch := range b {
		if ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// maxAuditID bounds client ids copied into audit events: they come from
// the request, before the client is known.
const maxAuditID = 200

// deny records a refused token request and answers it.
func (p *Provider) deny(c *fiber.Ctx, t tenantInfo, info *requestInfo, grantType string, err error) error {
	status, code, desc := describe(err)
	outcome := event.OutcomeDenied
	switch {
	case status >= 500:
		outcome = event.OutcomeError
	case code == "invalid_client":
		outcome = event.OutcomeFailure
	}
	detail := map[string]any{"error": code}
	if grantType != "" {
		detail["grant_type"] = truncate(grantType, 64)
	}
	if info.method != "" {
		detail["auth_method"] = info.method
	}
	if info.reason != "" {
		detail["reason"] = info.reason
	} else if desc != "" {
		detail["reason"] = desc
	}
	actor := "anonymous"
	if info.clientID != "" {
		actor = event.Ref("client", truncate(info.clientID, maxAuditID))
	}
	p.publish(c, t, actor, ActionTokenDeny, "", outcome, detail)
	return p.writeError(c, err)
}

// auditIssue records an issued token: never the token, only its id.
func (p *Provider) auditIssue(c *fiber.Ctx, t tenantInfo, ar fosite.AccessRequester, grantType string) {
	info := tokenInfo(ar)
	p.publish(c, t, event.Ref("client", info.ClientID), ActionTokenIssue, event.Ref("token", info.ID), event.OutcomeSuccess, map[string]any{
		"grant_type": grantType,
		"scope":      strings.Join(info.Scopes, " "),
		"audience":   info.Audience,
		"expires_at": info.ExpiresAt.UTC().Format(time.RFC3339),
	})
}

func (p *Provider) publish(c *fiber.Ctx, t tenantInfo, actor string, action event.Action, target, outcome string, detail map[string]any) {
	p.d.Audit.Publish(event.Event{
		Tenant:    t.id,
		Time:      time.Now().UTC(),
		RequestID: server.RequestID(c),
		Actor:     actor,
		Action:    action,
		Target:    target,
		Outcome:   outcome,
		Detail:    detail,
	})
}

// safeHeaders returns the request headers with lowercase names, without
// Authorization and Cookie, for grant type extensions.
func safeHeaders(c *fiber.Ctx) map[string][]string {
	out := map[string][]string{}
	for k, v := range c.GetReqHeaders() {
		k = strings.ToLower(k)
		if k != "authorization" && k != "cookie" {
			out[k] = v
		}
	}
	return out
}
