package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/ory/fosite"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Paths of the browser-facing endpoints, below the tenant's base.
const (
	// PathAuthorize is the authorization endpoint (RFC 6749 section 3.1).
	PathAuthorize = "/oauth2/authorize"
	// PathAuthorizeResume continues an authorization request after the
	// login or consent page.
	PathAuthorizeResume = "/oauth2/authorize/resume"
	// PathConsent receives the consent form.
	PathConsent = "/oauth2/consent"
)

// Audit actions of the authorization endpoint.
const (
	// ActionAuthorize: an authorization code was issued, or the request
	// was refused (outcome denied) or failed.
	ActionAuthorize event.Action = "oauth.authorize"
	// ActionConsent: a user granted or refused consent to a client.
	ActionConsent event.Action = "consent.decide"
)

// kindAuthzFlow is the store.Token kind of authorization requests waiting
// for a login or a consent.
const kindAuthzFlow = "authz_flow"

// authzFlowLifetime bounds how long a user may take to log in and consent.
const authzFlowLifetime = 30 * time.Minute

// minNonceLength is the shortest nonce accepted: shorter ones cannot be
// unguessable (fosite's MinParameterEntropy, set to the same value).
const minNonceLength = 8

// maxAuthorizeQuery bounds the authorization request's parameters.
const maxAuthorizeQuery = 16 << 10

// ClientSettingRequirePKCE is the key in store.Client.Settings that, set to
// false, lets a confidential client use the authorization code grant
// without PKCE. Public clients always need PKCE with S256.
const ClientSettingRequirePKCE = "require_pkce"

// authzFlow is an authorization request waiting for the browser to come
// back from the login or consent page.
type authzFlow struct {
	ID          string     `json:"-"`
	Query       url.Values `json:"query"`
	RequestedAt time.Time  `json:"requested_at"`
	// ConsentFor is the user the consent page was shown to; Consented
	// says that user allowed the request.
	ConsentFor string `json:"consent_for,omitempty"`
	Consented  bool   `json:"consented,omitempty"`
}

func (p *Provider) saveAuthzFlow(ctx context.Context, t tenantInfo, f *authzFlow, replace bool) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding authorization flow: %w", err)
	}
	if replace {
		if err := p.d.Store.DeleteToken(ctx, t.id, kindAuthzFlow, f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("saving authorization flow: %w: %w", errStorage, err)
		}
	}
	if err := p.d.Store.CreateToken(ctx, store.Token{
		Kind: kindAuthzFlow, Key: f.ID, TenantID: t.id, ClientID: truncate(f.Query.Get("client_id"), 200), Active: true,
		Data: data, CreatedAt: f.RequestedAt, ExpiresAt: f.RequestedAt.Add(authzFlowLifetime),
	}); err != nil {
		return fmt.Errorf("saving authorization flow: %w: %w", errStorage, err)
	}
	return nil
}

func (p *Provider) loadAuthzFlow(ctx context.Context, t tenantInfo, id string) (*authzFlow, error) {
	if id == "" || len(id) > 64 {
		return nil, store.ErrNotFound
	}
	tok, err := p.d.Store.GetToken(ctx, t.id, kindAuthzFlow, id)
	if err != nil {
		return nil, err
	}
	f := &authzFlow{}
	if err := json.Unmarshal(tok.Data, f); err != nil {
		return nil, store.ErrNotFound
	}
	f.ID = id
	return f, nil
}

// authorize serves the authorization endpoint (RFC 6749 section 3.1) for
// GET and POST (OpenID Connect Core 1.0 section 3.1.2.1).
func (p *Provider) authorize(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	var raw string
	if c.Method() == fiber.MethodPost {
		raw = string(c.Body())
	} else {
		raw = string(c.Request().URI().QueryString())
	}
	if len(raw) > maxAuthorizeQuery {
		return p.d.Login.RenderError(c, http.StatusBadRequest, t.page(""), "error.request", "The authorization request is too large.")
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return p.d.Login.RenderError(c, http.StatusBadRequest, t.page(""), "error.request", "The authorization request is not a valid query.")
	}
	// A pushed request_uri or a request object is unpacked first; its
	// errors go to an error page, as the redirect URI inside is unchecked.
	if q, err = p.resolveAuthorizeQuery(ctx, t, q); err != nil {
		if errors.Is(err, errStorage) {
			return p.pageFailure(c, t, err)
		}
		status, _, desc := describe(err)
		if status == http.StatusUnauthorized || status >= 500 {
			status = http.StatusBadRequest
		}
		return p.d.Login.RenderError(c, status, t.page(""), "error.request", desc)
	}
	return p.continueAuthorize(ctx, c, t, &authzFlow{Query: q, RequestedAt: time.Now().UTC()})
}

// resume continues a waiting authorization request.
func (p *Provider) resume(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	f, err := p.loadAuthzFlow(ctx, t, c.Query("flow"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return p.d.Login.RenderError(c, http.StatusBadRequest, t.page(""), "login.expired", "")
	case err != nil:
		return p.pageFailure(c, t, err)
	}
	return p.continueAuthorize(ctx, c, t, f)
}

// continueAuthorize takes an authorization request as far as it can: it
// validates it, sends the browser to log in or to consent when needed, and
// issues the code once both are done.
func (p *Provider) continueAuthorize(ctx context.Context, c *fiber.Ctx, t tenantInfo, f *authzFlow) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "/?"+f.Query.Encode(), http.NoBody)
	if err != nil {
		return p.pageFailure(c, t, err)
	}
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, r)
	if err != nil {
		return p.authorizeError(ctx, c, t, ar, err)
	}
	form := ar.GetRequestForm()
	cl, ok := ar.GetClient().(*client)
	if !ok {
		return p.pageFailure(c, t, fmt.Errorf("client of type %T", ar.GetClient()))
	}
	if n := form.Get("nonce"); n != "" && len(n) < minNonceLength {
		// fosite would only refuse it at the token endpoint, after the
		// code was issued.
		return p.authorizeError(ctx, c, t, ar, fosite.ErrInsufficientEntropy.WithHintf("The nonce must be at least %d characters.", minNonceLength))
	}
	prompt := strings.Fields(form.Get("prompt"))
	none := slices.Contains(prompt, "none")

	sess, err := p.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return p.authorizeError(ctx, c, t, ar, errors.Join(errStorage, err))
	}
	force := slices.Contains(prompt, "login") || slices.Contains(prompt, "select_account")
	if ma := form.Get("max_age"); ma != "" {
		secs, err := strconv.ParseInt(ma, 10, 64)
		if err != nil || secs < 0 {
			return p.authorizeError(ctx, c, t, ar, fosite.ErrInvalidRequest.WithHint("max_age must be a non-negative integer."))
		}
		if sess != nil && time.Since(sess.AuthTime) > time.Duration(secs)*time.Second {
			force = true
		}
	}
	if hint := form.Get("id_token_hint"); hint != "" && sess != nil {
		tok, err := idTokenSigner{p.signer}.Decode(withTenant(ctx, t), hint)
		if err != nil {
			return p.authorizeError(ctx, c, t, ar, fosite.ErrInvalidRequest.WithHint("The id_token_hint is not an ID token of this issuer."))
		}
		if sub, _ := tok.Claims["sub"].(string); sub != sess.UserID {
			force = true
		}
	}
	// Step-up: the session's acr is below the requested acr_values
	// (builtin/login protect.go); the login runs the flow's later steps.
	stepUp := sess != nil && !force && sess.AuthTime.Before(f.RequestedAt) && login.NeedsStepUp(sess.ACR, form.Get("acr_values"))
	needLogin := sess == nil || (force && sess.AuthTime.Before(f.RequestedAt)) || stepUp
	if needLogin {
		if none {
			return p.authorizeError(ctx, c, t, ar, fosite.ErrLoginRequired)
		}
		if err := p.ensureFlowSaved(ctx, t, f); err != nil {
			return p.authorizeError(ctx, c, t, ar, err)
		}
		return c.Redirect(p.d.Login.LoginURL(t.base, t.base+PathAuthorizeResume+"?flow="+url.QueryEscape(f.ID), login.Options{
			Force: sess != nil || force, LoginHint: form.Get("login_hint"), UILocales: form.Get("ui_locales"),
			Client: cl.id, ACRValues: form.Get("acr_values"), StepUp: stepUp,
		}), http.StatusSeeOther)
	}

	if consented := f.Consented && f.ConsentFor == sess.UserID; !cl.firstParty && !consented {
		covered := false
		if !slices.Contains(prompt, "consent") {
			cs, err := p.d.Store.GetConsent(ctx, t.id, sess.UserID, cl.id)
			switch {
			case err == nil:
				covered = !slices.ContainsFunc(ar.GetRequestedScopes(), func(s string) bool { return !slices.Contains(cs.Scopes, s) })
			case !errors.Is(err, store.ErrNotFound):
				return p.authorizeError(ctx, c, t, ar, errors.Join(errStorage, err))
			}
		}
		if !covered {
			if none {
				return p.authorizeError(ctx, c, t, ar, fosite.ErrConsentRequired)
			}
			f.ConsentFor, f.Consented = sess.UserID, false
			if err := p.ensureFlowSaved(ctx, t, f); err != nil {
				return p.authorizeError(ctx, c, t, ar, err)
			}
			return p.d.Login.RenderConsent(c, login.Consent{
				Page:   t.page(form.Get("ui_locales")),
				Client: cl.displayName(),
				Scopes: ar.GetRequestedScopes(),
				Action: t.base + PathConsent,
				Hidden: []login.Hidden{{Name: "flow", Value: f.ID}},
			})
		}
	}
	return p.issueCode(ctx, c, t, ar, f, sess)
}

// ensureFlowSaved stores f under a new id the first time it must wait.
func (p *Provider) ensureFlowSaved(ctx context.Context, t tenantInfo, f *authzFlow) error {
	if f.ID != "" {
		return p.saveAuthzFlow(ctx, t, f, true)
	}
	id, err := secret.RandomToken(24)
	if err != nil {
		return err
	}
	f.ID = id
	return p.saveAuthzFlow(ctx, t, f, false)
}

// consent receives the consent form.
func (p *Provider) consent(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	if !p.d.Login.CheckCSRF(c) {
		return p.d.Login.RenderError(c, http.StatusForbidden, t.page(""), "error.csrf", "")
	}
	f, err := p.loadAuthzFlow(ctx, t, c.FormValue("flow"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return p.d.Login.RenderError(c, http.StatusBadRequest, t.page(""), "login.expired", "")
	case err != nil:
		return p.pageFailure(c, t, err)
	}
	sess, err := p.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return p.pageFailure(c, t, err)
	}
	if sess == nil || f.ConsentFor == "" || sess.UserID != f.ConsentFor {
		// The user changed (or signed out) since the page was shown.
		return p.d.Login.RenderError(c, http.StatusBadRequest, t.page(""), "login.expired", "")
	}
	clientID := truncate(f.Query.Get("client_id"), maxAuditID)
	if c.FormValue("decision") != "allow" {
		p.publish(c, t, event.Ref("user", sess.UserID), ActionConsent, event.Ref("client", clientID), event.OutcomeDenied, nil)
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, "/?"+f.Query.Encode(), http.NoBody)
		if err != nil {
			return p.pageFailure(c, t, err)
		}
		ar, err := p.oauth2.NewAuthorizeRequest(ctx, r)
		if err != nil {
			return p.authorizeError(ctx, c, t, ar, err)
		}
		p.dropFlow(ctx, t, f)
		return p.authorizeError(ctx, c, t, ar, fosite.ErrAccessDenied.WithHint("The user refused access."))
	}
	if c.FormValue("remember") == "1" {
		scopes := strings.Fields(f.Query.Get("scope"))
		if prev, err := p.d.Store.GetConsent(ctx, t.id, sess.UserID, clientID); err == nil {
			for _, s := range prev.Scopes {
				if !slices.Contains(scopes, s) {
					scopes = append(scopes, s)
				}
			}
		}
		if err := p.d.Store.PutConsent(ctx, store.Consent{TenantID: t.id, UserID: sess.UserID, ClientID: clientID, Scopes: scopes, GrantedAt: time.Now().UTC()}); err != nil {
			return p.pageFailure(c, t, err)
		}
	}
	p.publish(c, t, event.Ref("user", sess.UserID), ActionConsent, event.Ref("client", clientID), event.OutcomeSuccess, map[string]any{"scope": f.Query.Get("scope"), "remembered": c.FormValue("remember") == "1"})
	f.Consented = true
	return p.continueAuthorize(ctx, c, t, f)
}

// issueCode grants the request to the session's user and sends the code
// to the client.
func (p *Provider) issueCode(ctx context.Context, c *fiber.Ctx, t tenantInfo, ar fosite.AuthorizeRequester, f *authzFlow, sess *store.Session) error {
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	audience := slices.Clone([]string(ar.GetRequestedAudience()))
	for _, res := range ar.GetRequestForm()["resource"] {
		if err := checkResource(res); err != nil {
			return p.authorizeError(ctx, c, t, ar, err)
		}
		if !slices.Contains(registeredAudience(ar.GetClient()), res) {
			return p.authorizeError(ctx, c, t, ar, errInvalidTarget.WithHintf("The client may not request resource %q.", res))
		}
		if !slices.Contains(audience, res) {
			audience = append(audience, res)
		}
	}
	if len(audience) == 0 {
		audience = registeredAudience(ar.GetClient())
	}
	if len(audience) == 0 {
		audience = []string{t.issuer}
	}
	for _, a := range audience {
		ar.GrantAudience(a)
	}

	user, err := p.d.Store.GetUser(ctx, t.id, sess.UserID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// The account was deleted while signed in.
			return p.authorizeError(ctx, c, t, ar, fosite.ErrLoginRequired.WithHint("The account no longer exists."))
		}
		return p.authorizeError(ctx, c, t, ar, errors.Join(errStorage, err))
	}
	if !user.Enabled || user.LockedUntil.After(time.Now()) || store.Suspended(user, time.Now()) {
		return p.authorizeError(ctx, c, t, ar, fosite.ErrAccessDenied.WithHint("The account is disabled or locked."))
	}
	s := newSession()
	if jkt := ar.GetRequestForm().Get("dpop_jkt"); jkt != "" {
		// RFC 9449 section 10: the code is bound to the key.
		if len(jkt) != 43 || strings.Trim(jkt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return p.authorizeError(ctx, c, t, ar, fosite.ErrInvalidRequest.WithHint("dpop_jkt must be a base64url SHA-256 JWK thumbprint."))
		}
		s.CodeJKT = jkt
	}
	s.Subject = user.ID
	s.Username = user.Username
	s.JWTClaims.Subject = user.ID
	s.JWTClaims.Add("client_id", ar.GetClient().GetID())
	s.JWTClaims.Add("sid", sess.ID)
	s.JWTClaims.Add("auth_time", sess.AuthTime.Unix())
	id := s.IDTokenClaims()
	id.Subject = user.ID
	id.AuthTime = sess.AuthTime.UTC().Truncate(time.Second)
	id.RequestedAt = f.RequestedAt.Truncate(time.Second)
	id.AuthenticationContextClassReference = sess.ACR
	id.AuthenticationMethodsReferences = sess.AMR
	// A login whose attribute step was federated releases the attributes
	// the identity provider asserted, not the account's.
	s.Attributes = login.Attributes(sess)
	if id.Extra, err = p.releasedClaims(ctx, t, user, s.Attributes, ar.GetGrantedScopes(), clientProfile(ar.GetClient())); err != nil {
		return p.authorizeError(ctx, c, t, ar, err)
	}
	id.Extra["sid"] = sess.ID

	resp, err := p.oauth2.NewAuthorizeResponse(ctx, ar, s)
	if err != nil {
		return p.authorizeError(ctx, c, t, ar, err)
	}
	if ar.GetGrantedScopes().Has("openid") && ar.GetRedirectURI() != nil {
		// OpenID Connect Session Management 1.0 section 2.
		ss, err := p.setBrowserState(c, t, sess, ar.GetClient().GetID(), ar.GetRedirectURI().String())
		if err != nil {
			return p.authorizeError(ctx, c, t, ar, err)
		}
		resp.AddParameter("session_state", ss)
	}
	if f.ID != "" {
		p.dropFlow(ctx, t, f)
	}
	p.trackRP(ctx, t, sess, ar.GetClient().GetID())
	p.publish(c, t, event.Ref("user", user.ID), ActionAuthorize, event.Ref("client", ar.GetClient().GetID()), event.OutcomeSuccess, map[string]any{
		"scope": strings.Join(ar.GetGrantedScopes(), " "), "session": sess.ID,
	})
	w := newResponseWriter()
	p.oauth2.WriteAuthorizeResponse(ctx, w, ar, resp)
	return w.copyTo(c)
}

func (p *Provider) dropFlow(ctx context.Context, t tenantInfo, f *authzFlow) {
	if err := p.d.Store.DeleteToken(ctx, t.id, kindAuthzFlow, f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.d.Log.WarnContext(ctx, "deleting authorization flow", "err", err)
	}
}

// authorizeError answers a failed authorization request: to the client's
// redirect URI when it is known to be the client's (RFC 6749 section
// 4.1.2.1), else on an error page, never redirecting to an unchecked URI.
func (p *Provider) authorizeError(ctx context.Context, c *fiber.Ctx, t tenantInfo, ar fosite.AuthorizeRequester, err error) error {
	status, code, desc := describe(err)
	if status >= 500 {
		p.d.Log.ErrorContext(ctx, "authorization request failed", "err", err)
	}
	clientID := ""
	if ar != nil && ar.GetClient() != nil {
		clientID = ar.GetClient().GetID()
	}
	outcome := event.OutcomeDenied
	if status >= 500 {
		outcome = event.OutcomeError
	}
	p.publish(c, t, "anonymous", ActionAuthorize, event.Ref("client", truncate(clientID, maxAuditID)), outcome, map[string]any{"error": code})
	if ar == nil || !ar.IsRedirectURIValid() {
		if status == http.StatusUnauthorized {
			// An unknown client: the browser is not the client, and
			// cannot authenticate.
			status = http.StatusBadRequest
		}
		return p.d.Login.RenderError(c, status, t.page(""), "error.request", desc)
	}
	rfc := authorizeRFCError(err)
	w := newResponseWriter()
	p.oauth2.WriteAuthorizeError(ctx, w, ar, rfc)
	return w.copyTo(c)
}

// authorizeRFCError is err as the RFC 6749 error sent to the client's
// redirect URI: the authorization endpoint's own codes pass, anything
// unexpected is server_error or temporarily_unavailable without its cause.
func authorizeRFCError(err error) *fosite.RFC6749Error {
	if errors.Is(err, errStorage) {
		return fosite.ErrTemporarilyUnavailable
	}
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) {
		return rfc
	}
	return fosite.ErrServerError
}

// pageFailure logs err and shows the generic error page.
func (p *Provider) pageFailure(c *fiber.Ctx, t tenantInfo, err error) error {
	p.d.Log.ErrorContext(c.UserContext(), "authorization request failed", "err", err)
	return p.d.Login.RenderError(c, http.StatusServiceUnavailable, t.page(""), "login.error", "")
}

// userClaims returns the OpenID Connect standard claims (Core 1.0 section
// 5.4) of u that the granted scopes release.
func userClaims(u store.User, scopes fosite.Arguments) map[string]any {
	m := map[string]any{}
	if scopes.Has("profile") {
		m["preferred_username"] = u.Username
		if u.DisplayName != "" {
			m["name"] = u.DisplayName
		}
		if u.GivenName != "" {
			m["given_name"] = u.GivenName
		}
		if u.FamilyName != "" {
			m["family_name"] = u.FamilyName
		}
		if !u.UpdatedAt.IsZero() {
			m["updated_at"] = u.UpdatedAt.Unix()
		}
	}
	if scopes.Has("email") && u.Email != "" {
		m["email"] = u.Email
		m["email_verified"] = u.EmailVerified
	}
	if scopes.Has("phone") && u.PhoneNumber != "" {
		m["phone_number"] = u.PhoneNumber
	}
	return m
}

// codeKey is the store key of an authorization code's OpenID Connect
// record: fosite hands the code itself to that storage, and codes are
// never stored in clear.
func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// responseWriter collects what fosite writes, for fiber.
type responseWriter struct {
	header http.Header
	status int
	body   []byte
}

func newResponseWriter() *responseWriter { return &responseWriter{header: http.Header{}} }

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

func (w *responseWriter) WriteHeader(status int) { w.status = status }

func (w *responseWriter) copyTo(c *fiber.Ctx) error {
	for k, vs := range w.header {
		for i, v := range vs {
			if i == 0 {
				c.Set(k, v)
			} else {
				c.Append(k, v)
			}
		}
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return c.Status(w.status).Send(w.body)
}
