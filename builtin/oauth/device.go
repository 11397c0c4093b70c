package oauth

import (
	"context"
	"crypto/rand"
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
	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Paths of the device authorization grant (RFC 8628), below the tenant's
// base.
const (
	// PathDeviceAuthorization is the device authorization endpoint (RFC
	// 8628 section 3.1).
	PathDeviceAuthorization = "/oauth2/device_authorization"
	// PathDevice is the verification URI (section 3.3): the page where the
	// user enters the code the device shows.
	PathDevice = "/device"
	// PathDeviceConsent receives the consent form of a device request.
	PathDeviceConsent = "/device/consent"
)

// ActionDeviceDecide is recorded when a user approves or refuses a device
// (RFC 8628 section 3.3).
const ActionDeviceDecide event.Action = "device.decide"

const (
	// grantTypeDeviceCode is the grant type of RFC 8628 section 3.4.
	grantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// kindDevice is the store.Token kind of a device request, keyed by
	// the SHA-256 of its device code; the device polls it.
	kindDevice = "device"
	// kindDeviceUser is the store.Token kind of a device request's user
	// side, keyed by its user code; the user's decision is written there.
	// Two records, each written by one side only, so a poll never
	// overwrites a decision.
	kindDeviceUser = "device_user"
	// deviceCodeLifetime is the expires_in of device and user codes.
	deviceCodeLifetime = 10 * time.Minute
	// devicePollInterval is the least time between two polls (interval).
	devicePollInterval = 5 * time.Second
	// userCodeAlphabet has no vowels (no words) and no look-alikes (RFC
	// 8628 section 6.1): 20 letters, 8 of them give 20^8 ≈ 2^34.6 codes,
	// and a code lives ten minutes.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
	// deviceExpiredGrace is how long an expired device request is kept.
	deviceExpiredGrace = time.Hour
)

// Device request states.
const (
	deviceStatusPending  = "pending"
	deviceStatusApproved = "approved"
	deviceStatusDenied   = "denied"
)

// Errors of RFC 8628 section 3.5. fosite has none of them.
var (
	errAuthorizationPending = &fosite.RFC6749Error{ErrorField: "authorization_pending", DescriptionField: "The user has not yet completed the authorization.", CodeField: http.StatusBadRequest}
	errSlowDown             = &fosite.RFC6749Error{ErrorField: "slow_down", DescriptionField: "Polling too fast; the interval was increased by 5 seconds.", CodeField: http.StatusBadRequest}
	errExpiredToken         = &fosite.RFC6749Error{ErrorField: "expired_token", DescriptionField: "The device_code has expired.", CodeField: http.StatusBadRequest}
	errDeviceDenied         = &fosite.RFC6749Error{ErrorField: "access_denied", DescriptionField: "The user refused the authorization.", CodeField: http.StatusBadRequest}
)

// deviceRecord is the device side of a request (kindDevice).
type deviceRecord struct {
	ClientID    string    `json:"client_id"`
	UserCode    string    `json:"user_code"`
	Scopes      []string  `json:"scopes,omitempty"`
	Audience    []string  `json:"audience,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	// Interval is the polling interval in seconds; slow_down adds 5.
	Interval int       `json:"interval"`
	LastPoll time.Time `json:"last_poll,omitzero"`
	// ExpiresAt is when the device code expires. The record is kept
	// deviceExpiredGrace longer, so that a late poll learns expired_token
	// rather than invalid_grant.
	ExpiresAt time.Time `json:"expires_at"`
}

// deviceUserRecord is the user side of a request (kindDeviceUser).
type deviceUserRecord struct {
	DeviceKey string   `json:"device_key"`
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes,omitempty"`
	Status    string   `json:"status"`
	// The session that approved it.
	UserID    string    `json:"user_id,omitempty"`
	SessionID string    `json:"sid,omitempty"`
	AuthTime  time.Time `json:"auth_time,omitzero"`
	ACR       string    `json:"acr,omitempty"`
	AMR       []string  `json:"amr,omitempty"`
	// Attributes are the session's login.Attributes: what a federated
	// attribute step released.
	Attributes map[string]any `json:"attrs,omitempty"`
}

// deviceKey is the store key of a device code: codes are never stored in
// clear.
func deviceKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// newUserCode returns a random user code, XXXX-XXXX.
func newUserCode() (string, error) {
	b := make([]byte, userCodeLength)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating user code: %w", err)
	}
	out := make([]byte, 0, userCodeLength+1)
	for i, v := range b {
		if i == userCodeLength/2 {
			out = append(out, '-')
		}
		// 256 is not a multiple of 20: the first 240 values are uniform;
		// the bias of the last 16 is below 1%, irrelevant for a code that
		// lives ten minutes and is guarded by a rate limit.
		out = append(out, userCodeAlphabet[int(v)%len(userCodeAlphabet)])
	}
	return string(out), nil
}

// normalizeUserCode accepts what a user types: any case, with or without
// the dash or spaces (RFC 8628 section 6.1). It returns "" for anything
// that cannot be a user code.
func normalizeUserCode(s string) string {
	if len(s) > 32 {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ':
		case strings.ContainsRune(userCodeAlphabet, r):
			b.WriteRune(r)
		default:
			return ""
		}
	}
	code := b.String()
	if len(code) != userCodeLength {
		return ""
	}
	return code[:userCodeLength/2] + "-" + code[userCodeLength/2:]
}

// putJSON replaces the record (kind, key) with v; the store has no update.
func (p *Provider) putJSON(ctx context.Context, t tenantInfo, kind, key, clientID string, v any, created, expires time.Time, replace bool) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s record: %w", kind, err)
	}
	if replace {
		if err := p.d.Store.DeleteToken(ctx, t.id, kind, key); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return err
			}
			return fmt.Errorf("replacing %s record: %w: %w", kind, errStorage, err)
		}
	}
	if err := p.d.Store.CreateToken(ctx, store.Token{
		Kind: kind, Key: key, TenantID: t.id, ClientID: clientID, Active: true, Data: data, CreatedAt: created, ExpiresAt: expires,
	}); err != nil {
		return fmt.Errorf("storing %s record: %w: %w", kind, errStorage, err)
	}
	return nil
}

// getJSON loads the unexpired record (kind, key) into v.
func (p *Provider) getJSON(ctx context.Context, t tenantInfo, kind, key string, v any) (store.Token, error) {
	tok, err := p.d.Store.GetToken(ctx, t.id, kind, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Token{}, err
	case err != nil:
		return store.Token{}, fmt.Errorf("loading %s record: %w: %w", kind, errStorage, err)
	}
	if err := json.Unmarshal(tok.Data, v); err != nil {
		return store.Token{}, fmt.Errorf("decoding %s record: %w", kind, err)
	}
	return tok, nil
}

// deviceAuthorization serves the device authorization endpoint (RFC 8628
// section 3.1). The client authenticates as at the token endpoint (public
// clients send their client_id) and must be registered for the device
// code grant; the requested scopes and resources must be the client's.
func (p *Provider) deviceAuthorization(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	info := &requestInfo{}
	ctx = withRequestInfo(ctx, info)
	r, form, err := formRequest(ctx, c)
	if err != nil {
		return p.writeError(c, err)
	}
	fc, err := p.authenticateClient(ctx, r, form)
	if err != nil {
		return p.deny(c, t, info, grantTypeDeviceCode, err)
	}
	cl, ok := fc.(*client)
	if !ok {
		return p.writeError(c, fmt.Errorf("client of type %T", fc))
	}
	if !slices.Contains(cl.grantTypes, grantTypeDeviceCode) {
		return p.deny(c, t, info, grantTypeDeviceCode, fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the device code grant."))
	}
	scopes := strings.Fields(form.Get("scope"))
	for _, s := range scopes {
		if !slices.Contains(cl.scopes, s) {
			return p.deny(c, t, info, grantTypeDeviceCode, fosite.ErrInvalidScope.WithHintf("The client may not request scope %q.", truncate(s, 64)))
		}
	}
	var audience []string
	for _, res := range append(slices.Clone(form["resource"]), form["audience"]...) {
		if !slices.Contains(cl.audience, res) {
			return p.deny(c, t, info, grantTypeDeviceCode, errInvalidTarget.WithHintf("The client may not request resource %q.", truncate(res, 200)))
		}
		if !slices.Contains(audience, res) {
			audience = append(audience, res)
		}
	}
	deviceCode, err := secret.RandomToken(32)
	if err != nil {
		return p.writeError(c, err)
	}
	now := time.Now().UTC()
	expires := now.Add(deviceCodeLifetime)
	key := deviceKey(deviceCode)
	var userCode string
	for range 5 {
		if userCode, err = newUserCode(); err != nil {
			return p.writeError(c, err)
		}
		err = p.putJSON(ctx, t, kindDeviceUser, userCode, cl.id, deviceUserRecord{
			DeviceKey: key, ClientID: cl.id, Scopes: scopes, Status: deviceStatusPending,
		}, now, expires, false)
		if err == nil {
			break
		}
	}
	if err != nil {
		return p.writeError(c, err)
	}
	if err := p.putJSON(ctx, t, kindDevice, key, cl.id, deviceRecord{
		ClientID: cl.id, UserCode: userCode, Scopes: scopes, Audience: audience,
		RequestedAt: now, Interval: int(devicePollInterval.Seconds()), ExpiresAt: expires,
	}, now, expires.Add(deviceExpiredGrace), false); err != nil {
		return p.writeError(c, err)
	}
	verification := t.issuer + PathDevice
	noStore(c)
	return c.JSON(fiber.Map{
		"device_code":               deviceCode,
		"user_code":                 userCode,
		"verification_uri":          verification,
		"verification_uri_complete": verification + "?" + url.Values{"user_code": {userCode}}.Encode(),
		"expires_in":                int(deviceCodeLifetime.Seconds()),
		"interval":                  int(devicePollInterval.Seconds()),
	})
}

// device serves the verification URI: GET shows the page, POST takes the
// code.
func (p *Provider) device(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	if c.Method() == fiber.MethodPost {
		return p.deviceSubmit(ctx, c, t)
	}
	return p.devicePage(ctx, c, t)
}

// devicePage serves the verification URI: with an SSO session, the form
// for the user code (pre-filled from ?user_code=); without, the login
// page first.
func (p *Provider) devicePage(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	code := normalizeUserCode(c.Query("user_code"))
	sess, err := p.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return p.pageFailure(c, t, err)
	}
	if sess == nil {
		back := t.base + PathDevice
		if code != "" {
			back += "?" + url.Values{"user_code": {code}}.Encode()
		}
		return c.Redirect(p.d.Login.LoginURL(t.base, back, login.Options{}), http.StatusSeeOther)
	}
	return p.d.Login.RenderDevice(c, login.Device{Page: t.page(""), Action: t.base + PathDevice, UserCode: code})
}

// deviceSubmit receives the user code. A valid, pending code of an enabled
// client leads to the consent page, or is approved at once for a
// first-party client or one the user already consented to for these
// scopes.
func (p *Provider) deviceSubmit(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	if !p.d.Login.CheckCSRF(c) {
		return p.d.Login.RenderError(c, http.StatusForbidden, t.page(""), "error.csrf", "")
	}
	sess, err := p.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return p.pageFailure(c, t, err)
	}
	if sess == nil {
		return c.Redirect(p.d.Login.LoginURL(t.base, t.base+PathDevice, login.Options{}), http.StatusSeeOther)
	}
	limited, err := p.deviceLimited(ctx, t, sess.ID, c.IP())
	if err != nil {
		return p.pageFailure(c, t, err)
	}
	if limited {
		p.publish(c, t, event.Ref("user", sess.UserID), ActionDeviceDecide, "", event.OutcomeDenied, map[string]any{"reason": "too many wrong user codes"})
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(deviceAttemptWindow/time.Second)))
		return p.d.Login.RenderDevice(c, login.Device{Page: t.page(""), Action: t.base + PathDevice, Limited: true})
	}
	code := normalizeUserCode(c.FormValue("user_code"))
	rec, cl, err := p.pendingDevice(ctx, t, code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.publish(c, t, event.Ref("user", sess.UserID), ActionDeviceDecide, "", event.OutcomeFailure, map[string]any{"reason": "unknown, used or expired user code"})
		if err := p.countDeviceFailure(ctx, t, sess.ID, c.IP()); err != nil {
			return p.pageFailure(c, t, err)
		}
		return p.d.Login.RenderDevice(c, login.Device{Page: t.page(""), Action: t.base + PathDevice, UserCode: truncate(c.FormValue("user_code"), 32), Invalid: true})
	case err != nil:
		return p.pageFailure(c, t, err)
	}
	if !cl.firstParty {
		cs, err := p.d.Store.GetConsent(ctx, t.id, sess.UserID, cl.id)
		covered := err == nil && !slices.ContainsFunc(rec.Scopes, func(s string) bool { return !slices.Contains(cs.Scopes, s) })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return p.pageFailure(c, t, err)
		}
		if !covered {
			return p.d.Login.RenderConsent(c, login.Consent{
				Page: t.page(""), Client: cl.displayName(), Scopes: rec.Scopes,
				Action: t.base + PathDeviceConsent, Hidden: []login.Hidden{{Name: "user_code", Value: code}},
			})
		}
	}
	return p.decideDevice(ctx, c, t, sess, code, rec, true)
}

// deviceConsent receives the consent form of a device request.
func (p *Provider) deviceConsent(ctx context.Context, c *fiber.Ctx, t tenantInfo) error {
	if !p.d.Login.CheckCSRF(c) {
		return p.d.Login.RenderError(c, http.StatusForbidden, t.page(""), "error.csrf", "")
	}
	sess, err := p.d.Login.Session(c, t.id, t.name)
	if err != nil {
		return p.pageFailure(c, t, err)
	}
	if sess == nil {
		return p.d.Login.RenderError(c, http.StatusBadRequest, t.page(""), "login.expired", "")
	}
	code := normalizeUserCode(c.FormValue("user_code"))
	rec, cl, err := p.pendingDevice(ctx, t, code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return p.d.Login.RenderDevice(c, login.Device{Page: t.page(""), Action: t.base + PathDevice, Invalid: true})
	case err != nil:
		return p.pageFailure(c, t, err)
	}
	allow := c.FormValue("decision") == "allow"
	if allow && c.FormValue("remember") == "1" {
		scopes := slices.Clone(rec.Scopes)
		if prev, err := p.d.Store.GetConsent(ctx, t.id, sess.UserID, cl.id); err == nil {
			for _, s := range prev.Scopes {
				if !slices.Contains(scopes, s) {
					scopes = append(scopes, s)
				}
			}
		}
		if err := p.d.Store.PutConsent(ctx, store.Consent{TenantID: t.id, UserID: sess.UserID, ClientID: cl.id, Scopes: scopes, GrantedAt: time.Now().UTC()}); err != nil {
			return p.pageFailure(c, t, err)
		}
	}
	return p.decideDevice(ctx, c, t, sess, code, rec, allow)
}

// pendingDevice loads the pending request of a user code and its client.
func (p *Provider) pendingDevice(ctx context.Context, t tenantInfo, code string) (deviceUserRecord, *client, error) {
	var rec deviceUserRecord
	if code == "" {
		return rec, nil, store.ErrNotFound
	}
	if _, err := p.getJSON(ctx, t, kindDeviceUser, code, &rec); err != nil {
		return rec, nil, err
	}
	if rec.Status != deviceStatusPending {
		return rec, nil, store.ErrNotFound
	}
	cl, err := p.storage.client(ctx, rec.ClientID)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return rec, nil, store.ErrNotFound
	case err != nil:
		return rec, nil, err
	}
	return rec, cl, nil
}

// decideDevice records the user's decision on the user side of the
// request, where the next poll reads it.
func (p *Provider) decideDevice(ctx context.Context, c *fiber.Ctx, t tenantInfo, sess *store.Session, code string, rec deviceUserRecord, allow bool) error {
	tok, err := p.d.Store.GetToken(ctx, t.id, kindDeviceUser, code)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return p.d.Login.RenderDevice(c, login.Device{Page: t.page(""), Action: t.base + PathDevice, Invalid: true})
		}
		return p.pageFailure(c, t, err)
	}
	rec.Status = deviceStatusDenied
	outcome := event.OutcomeDenied
	if allow {
		rec.Status, outcome = deviceStatusApproved, event.OutcomeSuccess
		rec.UserID, rec.SessionID, rec.AuthTime, rec.ACR, rec.AMR = sess.UserID, sess.ID, sess.AuthTime, sess.ACR, sess.AMR
		rec.Attributes = login.Attributes(sess)
	}
	if err := p.putJSON(ctx, t, kindDeviceUser, code, rec.ClientID, rec, tok.CreatedAt, tok.ExpiresAt, true); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return p.d.Login.RenderDevice(c, login.Device{Page: t.page(""), Action: t.base + PathDevice, Invalid: true})
		}
		return p.pageFailure(c, t, err)
	}
	p.publish(c, t, event.Ref("user", sess.UserID), ActionDeviceDecide, event.Ref("client", rec.ClientID), outcome, map[string]any{"scope": strings.Join(rec.Scopes, " "), "session": sess.ID})
	return p.d.Login.RenderDeviceDone(c, t.page(""), allow)
}

// deviceCodeGrant is the token endpoint handler of the device code grant
// (RFC 8628 section 3.4). While the user has not decided it answers
// authorization_pending, or slow_down to a device that polls faster than
// its interval (which then grows by 5 seconds); a refused request is
// access_denied and an expired one expired_token. An approved request is
// used once: it issues an access token for the user who approved it, a
// refresh token when the client may use that grant, and an ID token when
// openid was granted.
type deviceCodeGrant struct {
	p       *Provider
	helper  *oauth2.HandleHelper
	refresh oauth2.RefreshTokenStrategy
	id      *openid.IDTokenHandleHelper
	cfg     fosite.Configurator
}

// CanHandleTokenEndpointRequest reports whether grant_type is the device
// code grant.
func (g *deviceCodeGrant) CanHandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(grantTypeDeviceCode)
}

// CanSkipClientAuth is false: public clients identify with client_id.
func (g *deviceCodeGrant) CanSkipClientAuth(ctx context.Context, r fosite.AccessRequester) bool {
	return false
}

// HandleTokenEndpointRequest checks the device code and prepares the
// session of an approved request.
func (g *deviceCodeGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
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
	if !slices.Contains(cl.grantTypes, grantTypeDeviceCode) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the device code grant.")
	}
	form := r.GetRequestForm()
	code := form.Get("device_code")
	// The form is stored with the tokens: never the device code.
	form.Del("device_code")
	if code == "" {
		return fosite.ErrInvalidRequest.WithHint("The device_code parameter is required.")
	}
	key := deviceKey(code)
	var dev deviceRecord
	tok, err := g.p.getJSON(ctx, t, kindDevice, key, &dev)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fosite.ErrInvalidGrant.WithHint("The device_code is unknown or was used.")
	case err != nil:
		return err
	case dev.ClientID != cl.id:
		return fosite.ErrInvalidGrant.WithHint("The device_code was issued to another client.")
	case time.Now().After(dev.ExpiresAt):
		return errExpiredToken
	}
	var user deviceUserRecord
	if _, err := g.p.getJSON(ctx, t, kindDeviceUser, dev.UserCode, &user); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errExpiredToken
		}
		return err
	}
	now := time.Now().UTC()
	switch user.Status {
	case deviceStatusDenied:
		g.consume(ctx, t, key, dev.UserCode)
		return errDeviceDenied
	case deviceStatusApproved:
	default:
		interval := time.Duration(dev.Interval) * time.Second
		slow := !dev.LastPoll.IsZero() && now.Sub(dev.LastPoll) < interval
		if slow {
			dev.Interval += 5
		}
		dev.LastPoll = now
		if err := g.p.putJSON(ctx, t, kindDevice, key, cl.id, dev, tok.CreatedAt, tok.ExpiresAt, true); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if slow {
			return errSlowDown
		}
		return errAuthorizationPending
	}
	// Used once: the first poll that deletes the record wins.
	if err := g.p.d.Store.DeleteToken(ctx, t.id, kindDevice, key); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fosite.ErrInvalidGrant.WithHint("The device_code is unknown or was used.")
		}
		return fmt.Errorf("using device code: %w: %w", errStorage, err)
	}
	g.consume(ctx, t, "", dev.UserCode)

	usr, err := g.p.d.Store.GetUser(ctx, t.id, user.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fosite.ErrInvalidGrant.WithHint("The user no longer exists.")
	case err != nil:
		return fmt.Errorf("loading user: %w: %w", errStorage, err)
	case !usr.Enabled || usr.LockedUntil.After(now) || store.Suspended(usr, now):
		return fosite.ErrInvalidGrant.WithHint("The account is disabled or locked.")
	}
	for _, s := range dev.Scopes {
		r.GrantScope(s)
	}
	audience := dev.Audience
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
	s.Subject, s.Username = usr.ID, usr.Username
	s.Attributes = user.Attributes
	s.JWTClaims.Subject = usr.ID
	s.JWTClaims.JTI = uuid.NewString()
	s.JWTClaims.Add("client_id", cl.id)
	s.JWTClaims.Add("sid", user.SessionID)
	s.JWTClaims.Add("auth_time", user.AuthTime.Unix())
	atLifespan := fosite.GetEffectiveLifespan(cl, fosite.GrantType(grantTypeDeviceCode), fosite.AccessToken, g.cfg.GetAccessTokenLifespan(ctx))
	s.SetExpiresAt(fosite.AccessToken, now.Add(atLifespan))
	s.SetExpiresAt(fosite.RefreshToken, now.Add(g.cfg.GetRefreshTokenLifespan(ctx)))
	if r.GetGrantedScopes().Has("openid") {
		id := s.IDTokenClaims()
		id.Subject = usr.ID
		id.AuthTime = user.AuthTime.UTC().Truncate(time.Second)
		id.RequestedAt = dev.RequestedAt.Truncate(time.Second)
		id.AuthenticationContextClassReference = user.ACR
		id.AuthenticationMethodsReferences = user.AMR
		if id.Extra, err = g.p.releasedClaims(ctx, t, usr, user.Attributes, r.GetGrantedScopes(), clientProfile(r.GetClient())); err != nil {
			return err
		}
		id.Extra["sid"] = user.SessionID
	}
	return nil
}

// consume deletes the records of a finished request; failures only leave
// records that expire.
func (g *deviceCodeGrant) consume(ctx context.Context, t tenantInfo, key, userCode string) {
	if key != "" {
		if err := g.p.d.Store.DeleteToken(ctx, t.id, kindDevice, key); err != nil && !errors.Is(err, store.ErrNotFound) {
			g.p.d.Log.WarnContext(ctx, "deleting device request", "err", err)
		}
	}
	if err := g.p.d.Store.DeleteToken(ctx, t.id, kindDeviceUser, userCode); err != nil && !errors.Is(err, store.ErrNotFound) {
		g.p.d.Log.WarnContext(ctx, "deleting device request", "err", err)
	}
}

// PopulateTokenEndpointResponse issues the tokens of an approved request.
func (g *deviceCodeGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	accessSig, err := g.helper.IssueAccessToken(ctx, g.cfg.GetAccessTokenLifespan(ctx), r, resp)
	if err != nil {
		return err
	}
	if r.GetClient().GetGrantTypes().Has(string(fosite.GrantTypeRefreshToken)) {
		refresh, refreshSig, err := g.refresh.GenerateRefreshToken(ctx, r)
		if err != nil {
			return err
		}
		if err := g.p.storage.CreateRefreshTokenSession(ctx, refreshSig, accessSig, r.Sanitize([]string{})); err != nil {
			return err
		}
		resp.SetExtra("refresh_token", refresh)
	}
	if r.GetGrantedScopes().Has("openid") {
		if s, ok := r.GetSession().(*session); ok {
			s.IDTokenClaims().AccessTokenHash = g.id.GetAccessTokenHash(ctx, r, resp)
		}
		if err := g.id.IssueExplicitIDToken(ctx, idTokenLifetime, r, resp); err != nil {
			return err
		}
	}
	return nil
}

var _ fosite.TokenEndpointHandler = (*deviceCodeGrant)(nil)
