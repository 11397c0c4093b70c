// Package me serves the end-user REST API at /api/me (default tenant) and
// /t/{tenant}/api/me: a signed-in user reads and edits their own profile,
// changes their password, lists and ends their SSO sessions, and manages
// their second-factor devices, the consents they gave applications and the
// accounts of other identity providers linked to theirs.
//
// Two kinds of callers are admitted:
//
//  1. Applications, with an OAuth 2.0 bearer access token (RFC 6750) the
//     tenant issued for the user (not a client credentials token). Reading
//     needs the "profile" or ScopeMe scope; every change needs ScopeMe.
//  2. The browser the user signed in with, by its SSO session cookie. Reads
//     need nothing more; every state-changing request must also carry the
//     browser's CSRF token (GET /api/me/csrf returns it) in HeaderCSRF,
//     which is compared in constant time with the CSRF cookie (the
//     double-submit pattern), and an Origin header, when present, must be
//     the server's own.
//
// The profile lives in the tenant's user store that knows the user and
// every change goes through it (its Writer ability), so a read-only store
// refuses edits and the store's password hashing and lockout rules apply.
// A user may change their names, email (which becomes unverified), phone
// number and a few OpenID Connect profile attributes; never their username,
// roles, groups or account state. Every change is audited with the user as
// the actor. Errors are the server's JSON error body (code, message, field,
// request_id), the same as the admin API's.
package me

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/internal/restapi"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

// BasePath is where the API is mounted for the default tenant; other
// tenants get it under /t/{tenant}.
const BasePath = "/api/me"

// Scopes of access tokens.
const (
	// ScopeMe lets an application read and change everything this API
	// offers on the user's behalf.
	ScopeMe = "latch:me"
	// ScopeProfile (OpenID Connect's profile scope) lets an application
	// read, not change.
	ScopeProfile = "profile"
)

// HeaderCSRF carries the browser's CSRF token on state-changing requests
// authenticated by the session cookie.
const HeaderCSRF = "X-CSRF-Token"

// Audit actions of this package. A profile change is recorded as
// event.UserUpdate, so that provisioners push it like any other change.
const (
	ActionPasswordChange event.Action = "user.password.change"
	ActionSessionEnd     event.Action = "session.terminate"
	ActionDeviceRemove   event.Action = "user.mfa.remove"
	ActionConsentRevoke  event.Action = "consent.revoke"
	ActionLinkRemove     event.Action = "user.link.remove"
)

// ErrInvalidBearer is what BearerTokens returns for a token that is not
// valid for this tenant (malformed, expired, revoked, another audience).
var ErrInvalidBearer = errors.New("invalid bearer token")

// Token is what a validated access token says.
type Token struct {
	// Subject is the user the token was issued for; for a client
	// credentials token it is empty or the client id.
	Subject  string
	ClientID string
	Scopes   []string
}

// BearerTokens validates access tokens presented to the API.
type BearerTokens interface {
	// ValidateUserToken checks raw as an access token of tenant t meant
	// for this server. ErrInvalidBearer means it is not accepted; another
	// error means validity could not be decided.
	ValidateUserToken(ctx context.Context, t store.Tenant, raw string) (Token, error)
}

// Browser reads the SSO session and CSRF token of the browser's request
// (builtin/login's Service).
type Browser interface {
	// Session returns the browser's live session in the tenant, or nil.
	Session(c *fiber.Ctx, tenantID, tenantName string) (*store.Session, error)
	// CSRFToken returns the browser's CSRF token, setting its cookie when
	// the browser has none.
	CSRFToken(c *fiber.Ctx) (string, error)
}

// Extensions gives a tenant's enabled instances of a kind, in order (the
// node's extension set).
type Extensions interface {
	Enabled(tenant string, kind extension.Kind) []*extension.Instance
}

// Directory resolves a user id across a tenant's user store domains
// (kernel/userstore/router.Router): ids of stores other than the primary
// one carry their domain ("LDAP:5f0c…").
type Directory interface {
	GetUser(ctx context.Context, tenant, id string) (router.Member, abi.User, error)
}

// Store is the part of the kernel store the API uses.
type Store interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetClientByClientID(ctx context.Context, tenantID, clientID string) (store.Client, error)
	ListUserGroups(ctx context.Context, tenantID, userID string) ([]store.Group, error)
	ListEffectiveUserRoles(ctx context.Context, tenantID, userID string) ([]store.Role, error)
	ListUserSessions(ctx context.Context, tenantID, userID string) ([]store.Session, error)
	GetSession(ctx context.Context, tenantID, id string) (store.Session, error)
	DeleteSession(ctx context.Context, tenantID, id string) error
	store.Consents
	store.Links
}

// Auditor records audit events without blocking (kernel/event.Bus).
type Auditor interface {
	Publish(e event.Event) bool
}

// Deps are what the API needs from the node.
type Deps struct {
	Store      Store
	Extensions Extensions
	// Directory, when set, finds the store of a user by the domain in
	// its id; nil asks the tenant's user stores in order.
	Directory Directory
	// Bearer validates access tokens; nil admits browsers only.
	Bearer BearerTokens
	// Browser reads session cookies; nil admits access tokens only.
	Browser Browser
	Audit   Auditor
	// PublicURL is the server's external base URL; a state-changing
	// browser request whose Origin is neither it nor the request's own
	// origin is refused.
	PublicURL string
	Log       *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Passwords, when set, applies the tenant's password policy and
	// history to password changes (password.go); nil leaves them to the
	// user store's own rules.
	Passwords Passwords
	// Tokens, when set, revokes the OAuth tokens issued to the user when
	// they change their password, and those of a client when they revoke
	// its consent.
	Tokens TokenRevoker
}

// API is the end-user REST API.
type API struct {
	d      Deps
	origin string // PublicURL's scheme://host
}

// New returns the API over d.
func New(d Deps) *API {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	a := &API{d: d}
	if u, err := url.Parse(d.PublicURL); err == nil && u.Host != "" {
		a.origin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	return a
}

// Mount registers the routes on app.
func (a *API) Mount(app *fiber.App) {
	a.routes(app.Group(BasePath, a.defaultTenant, a.authenticate))
	a.routes(app.Group("/t/:tenant"+BasePath, a.namedTenant, a.authenticate))
}

func (a *API) routes(r fiber.Router) {
	r.Get("/", a.read(a.getProfile))
	r.Patch("/", a.write(a.patchProfile))
	r.Get("/csrf", a.read(a.csrf))
	r.Post("/password", a.write(a.postPassword))
	r.Get("/sessions", a.read(a.listSessions))
	r.Delete("/sessions", a.write(a.endOtherSessions))
	r.Delete("/sessions/:id", a.write(a.endSession))
	r.Get("/mfa", a.read(a.listDevices))
	r.Delete("/mfa/:instance/:device", a.write(a.removeDevice))
	r.Get("/consents", a.read(a.listConsents))
	r.Delete("/consents/:client", a.write(a.revokeConsent))
	r.Get("/links", a.read(a.listLinks))
	r.Delete("/links/:idp/:subject", a.write(a.removeLink))
	r.Use(func(c *fiber.Ctx) error {
		return fault.New(fault.CodeNotFound, "no such end-user API endpoint")
	})
}

const (
	localTenant    = "latch.me.tenant"
	localPrincipal = "latch.me.principal"
)

// principal is the authenticated caller.
type principal struct {
	UserID string
	// Token is set for access-token callers, Session for browsers.
	Token   *Token
	Session *store.Session
}

func tenantOf(c *fiber.Ctx) store.Tenant {
	t, _ := c.Locals(localTenant).(store.Tenant)
	return t
}

func principalOf(c *fiber.Ctx) principal {
	p, _ := c.Locals(localPrincipal).(principal)
	return p
}

func (a *API) defaultTenant(c *fiber.Ctx) error {
	return restapi.UseDefaultTenant(c, a.d.Store, localTenant)
}

func (a *API) namedTenant(c *fiber.Ctx) error {
	return restapi.UsePathTenant(c, a.d.Store, localTenant)
}

// authenticate admits a bearer token issued for a user, or else the
// browser's SSO session. Scopes and CSRF are checked per route (read,
// write).
func (a *API) authenticate(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	c.Set(fiber.HeaderCacheControl, "no-store")
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		raw, ok := bearerToken(h)
		if !ok || a.d.Bearer == nil {
			return a.unauthenticated(c, "", "the Authorization header must carry a bearer access token")
		}
		tok, err := a.d.Bearer.ValidateUserToken(ctx, t, raw)
		switch {
		case errors.Is(err, ErrInvalidBearer):
			a.audit(c, "anonymous", "me.auth", "", store.OutcomeFailure, map[string]any{"reason": "invalid bearer token"})
			return a.unauthenticated(c, "invalid_token", "the access token is not valid")
		case err != nil:
			return fault.Unavailable.WithCause(err)
		}
		if tok.Subject == "" || tok.Subject == tok.ClientID {
			a.audit(c, event.Ref("client", tok.ClientID), "me.auth", "", store.OutcomeDenied, map[string]any{"reason": "token not issued for a user"})
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch-me", error="invalid_token"`)
			return fault.New(fault.CodeForbidden, "the access token was issued to a client, not for a signed-in user")
		}
		c.Locals(localPrincipal, principal{UserID: tok.Subject, Token: &tok})
		return a.activeUser(c)
	}
	if a.d.Browser == nil {
		return a.unauthenticated(c, "", "a bearer access token is required")
	}
	sess, err := a.d.Browser.Session(c, t.ID, t.Name)
	if err != nil {
		return fault.Unavailable.WithCause(err)
	}
	if sess == nil {
		return a.unauthenticated(c, "", "sign in first, or send a bearer access token")
	}
	c.Locals(localPrincipal, principal{UserID: sess.UserID, Session: sess})
	return a.activeUser(c)
}

// activeUser admits only a user their store still has and has not
// disabled: a token or session outliving the account opens nothing.
func (a *API) activeUser(c *fiber.Ctx) error {
	if _, err := a.findUser(c); err != nil {
		return err
	}
	return c.Next()
}

func (a *API) unauthenticated(c *fiber.Ctx, code, msg string) error {
	h := `Bearer realm="latch-me"`
	if code != "" {
		h += `, error="` + code + `"`
	}
	c.Set(fiber.HeaderWWWAuthenticate, h)
	return fault.New(fault.CodeUnauthenticated, msg)
}

// read wraps a handler that only reads: a token needs ScopeProfile or
// ScopeMe.
func (a *API) read(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if p := principalOf(c); p.Token != nil && !slices.Contains(p.Token.Scopes, ScopeMe) && !slices.Contains(p.Token.Scopes, ScopeProfile) {
			return a.insufficientScope(c, p, ScopeProfile)
		}
		return h(c)
	}
}

// write wraps a handler that changes state: a token needs ScopeMe; a
// browser must send its CSRF token and no foreign Origin.
func (a *API) write(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p := principalOf(c)
		if p.Token != nil {
			if !slices.Contains(p.Token.Scopes, ScopeMe) {
				return a.insufficientScope(c, p, ScopeMe)
			}
			return h(c)
		}
		if o := c.Get(fiber.HeaderOrigin); o != "" && !a.sameOrigin(c, o) {
			a.audit(c, event.Ref("user", p.UserID), "me.csrf", "", store.OutcomeDenied, map[string]any{"reason": "foreign origin"})
			return fault.New(fault.CodeForbidden, "cross-origin requests may not change anything here")
		}
		got := c.Get(HeaderCSRF)
		want, err := a.d.Browser.CSRFToken(c)
		if err != nil {
			return fault.Internal.WithCause(err)
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			a.audit(c, event.Ref("user", p.UserID), "me.csrf", "", store.OutcomeDenied, map[string]any{"reason": "missing or wrong CSRF token"})
			return fault.New(fault.CodeForbidden, "the "+HeaderCSRF+" header must carry the CSRF token from GET "+BasePath+"/csrf").WithField(HeaderCSRF)
		}
		return h(c)
	}
}

func (a *API) sameOrigin(c *fiber.Ctx, origin string) bool {
	o := strings.ToLower(strings.TrimRight(origin, "/"))
	return (a.origin != "" && o == a.origin) || o == strings.ToLower(c.BaseURL())
}

func (a *API) insufficientScope(c *fiber.Ctx, p principal, scope string) error {
	a.audit(c, event.Ref("user", p.UserID), "me.auth", "", store.OutcomeDenied, map[string]any{"reason": "token lacks scope " + scope, "client": p.Token.ClientID})
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="latch-me", error="insufficient_scope", scope="`+scope+`"`)
	return fault.New(fault.CodeForbidden, "the access token lacks the "+scope+" scope")
}

// bearerToken extracts an RFC 6750 section 2.1 bearer token.
func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != "" && len(tok) <= 8192
}

// csrf returns the browser's CSRF token (setting its cookie when needed).
func (a *API) csrf(c *fiber.Ctx) error {
	if a.d.Browser == nil {
		return fault.New(fault.CodeUnsupported, "this server does not serve browser sessions")
	}
	tok, err := a.d.Browser.CSRFToken(c)
	if err != nil {
		return fault.Internal.WithCause(err)
	}
	return c.JSON(fiber.Map{"csrf_token": tok, "header": HeaderCSRF})
}

// audit publishes an event about the request c serves.
func (a *API) audit(c *fiber.Ctx, actor string, action event.Action, target, outcome string, detail map[string]any) {
	if a.d.Audit == nil {
		return
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["via"] = "me"
	if p := principalOf(c); p.Token != nil {
		detail["client"] = p.Token.ClientID
	}
	a.d.Audit.Publish(event.Event{
		Tenant: tenantOf(c).ID, Time: a.d.Now().UTC(), RequestID: server.RequestID(c),
		Actor: actor, Action: action, Target: target, Outcome: outcome, Detail: detail,
	})
}

// auditSelf records a change the signed-in user made to target.
func (a *API) auditSelf(c *fiber.Ctx, action event.Action, target, outcome string, detail map[string]any) {
	a.audit(c, event.Ref("user", principalOf(c).UserID), action, target, outcome, detail)
}

// userStore is the user store instance that knows the user, with the
// user as it has them.
type userStore struct {
	inst *extension.Instance
	user abi.User
}
