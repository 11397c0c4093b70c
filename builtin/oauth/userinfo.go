package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// Paths of the OpenID Connect endpoints, below the tenant's base.
const (
	// PathUserInfo is the UserInfo endpoint (OpenID Connect Core 1.0
	// section 5.3).
	PathUserInfo = "/oauth2/userinfo"
	// PathEndSession is the end_session_endpoint (OpenID Connect
	// RP-Initiated Logout 1.0).
	PathEndSession = "/oauth2/logout"
)

// userinfo serves the UserInfo endpoint for GET and POST. The access token
// comes in the Authorization header (RFC 6750 section 2.1) or, for POST,
// in the form (section 2.2); it must carry the openid scope. A DPoP-bound
// token comes with the DPoP scheme and a proof of its key (RFC 9449
// section 7.1), never as a bearer token.
func (p *Provider) userinfo(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	noStore(c)
	raw, dpop := "", false
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		dpop = strings.EqualFold(scheme, tokenTypeDPoP)
		if (!strings.EqualFold(scheme, "bearer") && !dpop) || strings.TrimSpace(rest) == "" {
			return bearerError(c, http.StatusBadRequest, "invalid_request", "The Authorization header must be a Bearer or DPoP token.")
		}
		raw = strings.TrimSpace(rest)
	} else if c.Method() == fiber.MethodPost {
		form, err := url.ParseQuery(string(c.Body()))
		if err != nil {
			return bearerError(c, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		}
		raw = form.Get("access_token")
	}
	if raw == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch"`)
		return c.SendStatus(http.StatusUnauthorized)
	}
	var info TokenInfo
	var err error
	if dpop {
		// RFC 9449 section 7.1: a DPoP-bound token with a proof of its key.
		info, err = p.validateAccessToken(ctx, t.id, raw)
		switch {
		case errors.Is(err, ErrInvalidToken) || (err == nil && info.DPoPJKT == ""):
			c.Set(fiber.HeaderWWWAuthenticate, dpopChallenge("invalid_token", "The access token is not a valid DPoP-bound token."))
			return c.Status(http.StatusUnauthorized).JSON(errorBody{Error: "invalid_token", Description: "The access token is not a valid DPoP-bound token."})
		case err == nil && info.CertThumbprint != "" && !certBindingHolds(ctx, info.CertThumbprint):
			c.Set(fiber.HeaderWWWAuthenticate, dpopChallenge("invalid_token", "The access token is bound to a client certificate."))
			return c.Status(http.StatusUnauthorized).JSON(errorBody{Error: "invalid_token", Description: "The access token is bound to a client certificate."})
		case err == nil:
			nonce, err := p.resourceNonceRequired(ctx, t, info.ClientID)
			if err != nil {
				return p.writeError(c, err)
			}
			if err := p.checkDPoPUse(ctx, c, t, PathUserInfo, raw, info.DPoPJKT, nonce); err != nil {
				if errors.Is(err, errStorage) {
					return p.writeError(c, err)
				}
				_, code, desc := describe(err)
				c.Set(fiber.HeaderWWWAuthenticate, dpopChallenge(code, desc))
				return c.Status(http.StatusUnauthorized).JSON(errorBody{Error: code, Description: desc})
			}
		}
	} else {
		info, err = p.ValidateAccessToken(ctx, t.id, raw)
	}
	switch {
	case errors.Is(err, ErrInvalidToken):
		return bearerError(c, http.StatusUnauthorized, "invalid_token", "The access token is not valid.")
	case err != nil:
		return p.writeError(c, errors.Join(errStorage, err))
	case !info.HasScope("openid"):
		return bearerError(c, http.StatusForbidden, "insufficient_scope", "The access token lacks the openid scope.")
	case info.Subject == info.ClientID:
		// A client credentials token has no end-user.
		return bearerError(c, http.StatusForbidden, "insufficient_scope", "The access token has no end-user.")
	}
	u, err := p.d.Store.GetUser(ctx, t.id, info.Subject)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return bearerError(c, http.StatusUnauthorized, "invalid_token", "The user of the access token no longer exists.")
	case err != nil:
		return p.writeError(c, errors.Join(errStorage, err))
	}
	profile := ""
	switch cl, err := p.d.Store.GetClientByClientID(ctx, t.id, info.ClientID); {
	case err == nil:
		profile = settingString(cl.Settings, clientSettingProfile)
	case !errors.Is(err, store.ErrNotFound):
		return p.writeError(c, errors.Join(errStorage, err))
	}
	claims, err := p.releasedClaims(ctx, t, u, info.attributes, info.Scopes, profile)
	if err != nil {
		return p.writeError(c, err)
	}
	claims["sub"] = u.ID
	return c.JSON(claims)
}

// bearerError answers an RFC 6750 section 3 error.
func bearerError(c *fiber.Ctx, status int, code, desc string) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch", error="`+code+`", error_description="`+desc+`"`)
	return c.Status(status).JSON(errorBody{Error: code, Description: desc})
}

// endSession serves RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0). A valid id_token_hint naming the signed-in user signs out at
// once; otherwise the user confirms on a page whose form posts back here
// (with a CSRF token). A post_logout_redirect_uri must be one the client
// registered (compared exactly), and the client must be known, from
// client_id or the hint's audience; the browser is sent there with state.
func (p *Provider) endSession(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	raw := string(c.Request().URI().QueryString())
	posted := c.Method() == fiber.MethodPost
	if posted {
		raw = string(c.Body())
	}
	q, err := url.ParseQuery(raw)
	if err != nil || len(raw) > maxAuthorizeQuery {
		return p.d.Login.RenderError(c, http.StatusBadRequest, t.page(""), "error.request", "")
	}
	pg := t.page(q.Get("ui_locales"))

	hintSub, hintAud := "", []string(nil)
	if hint := q.Get("id_token_hint"); hint != "" {
		tok, err := idTokenSigner{p.signer}.Decode(ctx, hint)
		if err != nil {
			return p.d.Login.RenderError(c, http.StatusBadRequest, pg, "error.request", "The id_token_hint is not an ID token of this issuer.")
		}
		hintSub, _ = tok.Claims["sub"].(string)
		switch aud := tok.Claims["aud"].(type) {
		case string:
			hintAud = []string{aud}
		case []any:
			for _, a := range aud {
				if s, ok := a.(string); ok {
					hintAud = append(hintAud, s)
				}
			}
		}
	}
	clientID := q.Get("client_id")
	if clientID != "" && hintAud != nil && !slices.Contains(hintAud, clientID) {
		return p.d.Login.RenderError(c, http.StatusBadRequest, pg, "error.request", "The client_id is not an audience of the id_token_hint.")
	}
	if clientID == "" && len(hintAud) == 1 {
		clientID = hintAud[0]
	}
	redirect := q.Get("post_logout_redirect_uri")
	if redirect != "" {
		cl, err := p.storage.client(ctx, clientID)
		switch {
		case errors.Is(err, errStorage):
			return p.pageFailure(c, t, err)
		case err != nil:
			return p.d.Login.RenderError(c, http.StatusBadRequest, pg, "error.request", "The client is unknown.")
		case !slices.Contains(cl.postLogout, redirect):
			return p.d.Login.RenderError(c, http.StatusBadRequest, pg, "error.request", "The post_logout_redirect_uri is not registered for the client.")
		}
	}

	sess, err := p.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return p.pageFailure(c, t, err)
	}
	confirmed := sess == nil || (hintSub != "" && hintSub == sess.UserID)
	if posted {
		if !p.d.Login.CheckCSRF(c) {
			return p.d.Login.RenderError(c, http.StatusForbidden, pg, "error.csrf", "")
		}
		confirmed = true
	}
	if !confirmed {
		hidden := []login.Hidden{}
		for _, k := range []string{"post_logout_redirect_uri", "state", "client_id", "ui_locales"} {
			if v := q.Get(k); v != "" {
				hidden = append(hidden, login.Hidden{Name: k, Value: v})
			}
		}
		if clientID != "" && q.Get("client_id") == "" {
			hidden = append(hidden, login.Hidden{Name: "client_id", Value: clientID})
		}
		return p.d.Login.RenderLogoutConfirm(c, pg, t.base+PathEndSession, hidden)
	}
	ended, err := p.d.Login.EndSession(c, t.id, t.name)
	if err != nil {
		return p.pageFailure(c, t, err)
	}
	var frames []string
	if ended != nil {
		p.publish(c, t, event.Ref("user", ended.UserID), ActionEndSession, event.Ref("session", ended.ID), event.OutcomeSuccess, map[string]any{"client_id": truncate(clientID, maxAuditID)})
		frames = p.logoutRPs(ctx, t, ended)
		if p.sessionEnd != nil {
			frames = append(frames, p.sessionEnd(c, t.name, ended)...)
		}
	}
	p.clearBrowserState(c, t)
	next := ""
	if redirect != "" {
		u, err := url.Parse(redirect)
		if err != nil {
			return p.d.Login.RenderError(c, http.StatusBadRequest, pg, "error.request", "")
		}
		if st := q.Get("state"); st != "" {
			v := u.Query()
			v.Set("state", st)
			u.RawQuery = v.Encode()
		}
		next = u.String()
	}
	if len(frames) > 0 {
		// Front-Channel Logout 1.0 section 4: the OP renders the RPs'
		// logout URIs in iframes, then goes on to the redirect URI.
		return p.d.Login.RenderFrontchannelLogout(c, login.FrontchannelLogout{Page: pg, Frames: frames, Next: next})
	}
	if next != "" {
		return c.Redirect(next, http.StatusSeeOther)
	}
	return p.d.Login.RenderLoggedOut(c, pg)
}

// ActionEndSession is the audit action of a sign-out through the
// end_session endpoint.
const ActionEndSession event.Action = "oauth.end_session"
