// Package login is Latch's browser sign-in front: the login pages, the
// single-sign-on (SSO) session and its cookie, and the page helpers
// (consent, sign-out, errors) the protocol front doors share. It knows no
// protocol: the OAuth 2.0 / OpenID Connect provider and the SAML IdP send
// the browser to LoginURL with a return path, and read the session back
// with Session when it returns.
//
// A login is a flow of steps. Each step runs one of the tenant's
// authenticators (the kernel's Authenticator kind: builtin, WASM or
// go-plugin alike) until it answers authenticated; its challenges (forms)
// are rendered as server-side HTML that works without JavaScript. The flow
// is kept in the kernel store, bound to the browser by a cookie, so any
// node of a cluster can continue it.
//
// Forms are protected against cross-site request forgery by a per-browser
// token, sent both as a SameSite=Lax, HttpOnly cookie and as a hidden
// field, compared in constant time; a login flow is also bound to the
// browser that started it, which stops login CSRF (a victim signed in to
// an attacker's account).
package login

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Audit actions of this package.
const (
	// ActionLogin: a user signed in (a session was created) or failed to.
	ActionLogin event.Action = "session.login"
	// ActionLogout: a session was ended.
	ActionLogout event.Action = "session.logout"
)

// Paths, below a tenant's base ("" or "/t/{tenant}").
const (
	// PathLogin is the login page.
	PathLogin = "/login"
	// PathAssets serves the pages' stylesheet (one for every tenant).
	PathAssets = "/ui"
)

// Defaults of Deps.
const (
	DefaultSessionLifetime = 10 * time.Hour
	DefaultSessionIdle     = 2 * time.Hour
	DefaultFlowLifetime    = 15 * time.Minute
)

// Kinds of store.Token this package keeps.
const kindFlow = "login_flow"

// Cookie names. The session cookie of a tenant other than the default one
// is named sessionCookie + "_" + tenant name.
const (
	sessionCookie = "latch_session"
	csrfCookie    = "latch_csrf"
)

// Store is the part of the kernel store the service uses.
type Store interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetClientByClientID(ctx context.Context, tenantID, clientID string) (store.Client, error)
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
	UpdateUser(ctx context.Context, u store.User) (store.User, error)
	GetRoleByName(ctx context.Context, tenantID, name string) (store.Role, error)
	AssignRole(ctx context.Context, tenantID, roleID, kind, subjectID string) error
	UnassignRole(ctx context.Context, tenantID, roleID, kind, subjectID string) error
	GetFlow(ctx context.Context, tenantID, name string, version int64) (store.Flow, error)
	store.Sessions
	store.Tokens
}

// Authenticators lists a tenant's authenticator instances in order. The
// node's extension set satisfies it.
type Authenticators interface {
	Enabled(tenant string, kind extension.Kind) []*extension.Instance
}

// Auditor records audit events without blocking (kernel/event.Bus).
type Auditor interface {
	Publish(e event.Event) bool
}

// Deps are what the service needs from the node.
type Deps struct {
	// Store keeps sessions and login flows. Required.
	Store Store
	// Authenticators are the tenants' authenticators. Required.
	Authenticators Authenticators
	// PublicURL is the node's external base URL. Cookies are Secure when
	// it is https. Required.
	PublicURL string
	// Log receives failures the user cannot be told about.
	Log *slog.Logger
	// Audit receives session.login and session.logout events.
	Audit Auditor
	// SessionLifetime is the longest an SSO session lives; zero means
	// DefaultSessionLifetime.
	SessionLifetime time.Duration
	// SessionIdle ends a session unused for that long; zero means
	// DefaultSessionIdle.
	SessionIdle time.Duration
	// ThemeDir, when set, is a theme folder (config ui.theme_dir): a
	// latch.css there replaces the pages' stylesheet, and
	// templates/<page>.html files there (layout, login, consent, logout,
	// info, device, frontchannel) replace the embedded templates of the
	// same name.
	ThemeDir string
	// Engine runs applications' adaptive scripts; nil refuses logins to
	// applications that have one.
	Engine *adaptive.Engine
}

// Service serves the login pages and keeps SSO sessions. It is safe for
// concurrent use.
type Service struct {
	d          Deps
	publicURL  string
	basePath   string // the path of PublicURL, prefixed to every redirect
	secure     bool
	pages      pages
	stylesheet []byte
	scripts    scripts
	passwords  Passwords                        // protect.go; nil: no password policy at login
	captchaURL func(base, flowID string) string // protect.go; nil: no CAPTCHA at login
}

// New builds the service.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Authenticators == nil {
		return nil, errors.New("creating login service: Deps.Store and Deps.Authenticators are required")
	}
	u, err := url.Parse(strings.TrimRight(d.PublicURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("creating login service: public url %q is not an absolute http(s) URL", d.PublicURL)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Audit == nil {
		d.Audit = discardAudit{}
	}
	if d.SessionLifetime <= 0 {
		d.SessionLifetime = DefaultSessionLifetime
	}
	if d.SessionIdle <= 0 {
		d.SessionIdle = DefaultSessionIdle
	}
	ps, err := parsePages(d.ThemeDir)
	if err != nil {
		return nil, fmt.Errorf("creating login service: %w", err)
	}
	css := defaultCSS
	if d.ThemeDir != "" {
		b, err := os.ReadFile(filepath.Join(d.ThemeDir, "latch.css"))
		switch {
		case err == nil:
			css = b
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("creating login service: reading theme: %w", err)
		}
	}
	return &Service{
		d:          d,
		publicURL:  u.String(),
		basePath:   u.Path,
		secure:     u.Scheme == "https",
		pages:      ps,
		stylesheet: css,
		scripts:    scripts{m: map[string]*adaptive.Script{}},
	}, nil
}

// Mount adds the login routes to app:
//
//	GET  {base}/login?return_to=…   start a login (or continue one: ?flow=…)
//	POST {base}/login               submit a step's form
//	GET  /ui/latch.css              the stylesheet
func (s *Service) Mount(app *fiber.App) {
	for _, prefix := range []string{"", "/t/:tenant"} {
		app.Get(prefix+PathLogin, s.getLogin)
		app.Post(prefix+PathLogin, s.postLogin)
	}
	app.Get(PathAssets+"/latch.css", s.css)
	app.Get(PathAssets+PathWebAuthnScript, s.webauthnJS)
}

// Tenant is the tenant a request is for.
type Tenant struct {
	ID, Name, DisplayName string
	// Base is the path prefix of the tenant's routes: "" or "/t/{name}".
	Base string
}

// resolve finds the enabled tenant of the request from its path.
func (s *Service) resolve(c *fiber.Ctx) (Tenant, bool, error) {
	name := c.Params("tenant")
	base := ""
	if name == "" {
		name = store.DefaultTenantName
	} else {
		if name == store.DefaultTenantName {
			return Tenant{}, false, nil
		}
		base = "/t/" + name
	}
	t, err := s.d.Store.GetTenantByName(c.UserContext(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Tenant{}, false, nil
	case err != nil:
		return Tenant{}, false, fmt.Errorf("loading tenant: %w", err)
	case !t.Enabled:
		return Tenant{}, false, nil
	}
	return Tenant{ID: t.ID, Name: t.Name, DisplayName: t.DisplayName, Base: base}, true, nil
}

// Options tune a login.
type Options struct {
	// Force asks for credentials even when a session exists (OpenID
	// Connect prompt=login, max_age exceeded, SAML ForceAuthn).
	Force bool
	// LoginHint pre-fills the username.
	LoginHint string
	// UILocales are the preferred page languages, space-separated.
	UILocales string
	// Client is the application being signed in to (its client_id); its
	// login flow (ClientSettingAuthentication) applies.
	Client string
	// ACRValues are the requested authentication context classes,
	// space-separated, for adaptive scripts (context.requestedAcr).
	ACRValues string
	// StepUp continues the browser's session at its next step instead of
	// starting over: the session's ACR is lower than ACRValues asks
	// (NeedsStepUp), so only the flow's later steps run (protect.go).
	StepUp bool
}

// LoginURL returns the URL that signs the browser in to the tenant
// (base "" or "/t/{name}") and then sends it to returnTo, a path on this
// server below the tenant's base.
func (s *Service) LoginURL(base, returnTo string, o Options) string {
	q := url.Values{"return_to": {returnTo}}
	if o.Force {
		q.Set("force", "1")
	}
	if o.LoginHint != "" {
		q.Set("login_hint", o.LoginHint)
	}
	if o.UILocales != "" {
		q.Set("ui_locales", o.UILocales)
	}
	if o.Client != "" {
		q.Set("client_id", o.Client)
	}
	if o.ACRValues != "" {
		q.Set("acr_values", o.ACRValues)
	}
	if o.StepUp {
		q.Set("step_up", "1")
	}
	return s.publicURL + base + PathLogin + "?" + q.Encode()
}

// URL returns the external URL of path on this server.
func (s *Service) URL(path string) string { return s.publicURL + path }

// validReturn reports whether to is a path on this server below base: no
// scheme, no host, no backslash or control characters, no "//" start.
func validReturn(base, to string) bool {
	if to == "" || len(to) > 4096 || !strings.HasPrefix(to, base+"/") || strings.HasPrefix(to, "//") {
		return false
	}
	for i := 0; i < len(to); i++ {
		if to[i] < 0x21 || to[i] == 0x7f || to[i] == '\\' {
			return false
		}
	}
	u, err := url.Parse(to)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// "/t/acme/../x" would leave the tenant's base once normalised.
	return !strings.Contains(u.Path, "/..") && !strings.Contains(u.Path, "/./")
}

// --- sessions ------------------------------------------------------------

func sessionCookieName(tenantName string) string {
	if tenantName == store.DefaultTenantName {
		return sessionCookie
	}
	return sessionCookie + "_" + tenantName
}

// dataSecretHash is the key in store.Session.Data of the hash of the
// cookie's secret part. The cookie is "{session id}.{secret}", so a copy of
// the sessions table does not let anyone take a session over.
const dataSecretHash = "secret_sha256"

// Session returns the browser's live SSO session in the tenant, or nil
// when it has none. Using a session extends it up to its idle timeout,
// never past its lifetime.
func (s *Service) Session(c *fiber.Ctx, tenantID, tenantName string) (*store.Session, error) {
	raw := c.Cookies(sessionCookieName(tenantName))
	id, sec, ok := strings.Cut(raw, ".")
	if !ok || id == "" || sec == "" || len(raw) > 256 {
		return nil, nil
	}
	sess, err := s.d.Store.GetSession(c.UserContext(), tenantID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("loading session: %w", err)
	}
	want, _ := sess.Data[dataSecretHash].(string)
	got := sha256.Sum256([]byte(sec))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(got[:])), []byte(want)) != 1 {
		return nil, nil
	}
	now := time.Now()
	if now.Sub(sess.LastSeenAt) > time.Minute {
		expires := now.Add(s.d.SessionIdle)
		if limit := sess.CreatedAt.Add(s.d.SessionLifetime); expires.After(limit) {
			expires = limit
		}
		if err := s.d.Store.TouchSession(c.UserContext(), tenantID, id, now, expires); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.d.Log.WarnContext(c.UserContext(), "extending session", "err", err)
		}
		sess.LastSeenAt, sess.ExpiresAt = now, expires
	}
	return &sess, nil
}

// startSession creates a session for subject after a completed login,
// replacing the browser's previous session in the tenant.
func (s *Service) startSession(c *fiber.Ctx, t Tenant, f *flow) (store.Session, error) {
	ctx := c.UserContext()
	if old, err := s.Session(c, t.ID, t.Name); err == nil && old != nil {
		if err := s.d.Store.DeleteSession(ctx, t.ID, old.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Session{}, fmt.Errorf("replacing session: %w", err)
		}
	}
	sec, err := secret.RandomToken(32)
	if err != nil {
		return store.Session{}, err
	}
	sum := sha256.Sum256([]byte(sec))
	now := time.Now()
	expires := now.Add(s.d.SessionIdle)
	if limit := now.Add(s.d.SessionLifetime); expires.After(limit) {
		expires = limit
	}
	data := map[string]any{dataSecretHash: hex.EncodeToString(sum[:]), "username": f.Username}
	if f.Attributes != nil {
		data[DataAttributes] = f.Attributes
	}
	sess, err := s.d.Store.CreateSession(ctx, store.Session{
		ID:         uuid.NewString(),
		TenantID:   t.ID,
		UserID:     f.Subject,
		AuthTime:   now,
		ACR:        orDefault(f.SelectedACR, acrFor(f.AMR)),
		AMR:        f.AMR,
		IP:         c.IP(),
		UserAgent:  truncate(c.Get(fiber.HeaderUserAgent), 512),
		Data:       data,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  expires,
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("creating session: %w", err)
	}
	c.Cookie(&fiber.Cookie{
		Name: sessionCookieName(t.Name), Value: sess.ID + "." + sec, Path: "/",
		HTTPOnly: true, Secure: s.secure, SameSite: fiber.CookieSameSiteLaxMode,
	})
	return sess, nil
}

// acrFor names the assurance of a login by its methods: "1" for one
// factor, "2" for several (ISO/IEC 29115 levels, as numbers, the form
// OpenID Connect's acr examples use).
func acrFor(amr []string) string {
	if len(amr) > 1 {
		return "2"
	}
	for _, m := range amr {
		if m == "mfa" {
			return "2"
		}
	}
	return "1"
}

// EndSession ends the browser's session in the tenant, if any, clears its
// cookie and returns the ended session (nil when there was none).
func (s *Service) EndSession(c *fiber.Ctx, tenantID, tenantName string) (*store.Session, error) {
	sess, err := s.Session(c, tenantID, tenantName)
	if err != nil {
		return nil, err
	}
	c.Cookie(&fiber.Cookie{
		Name: sessionCookieName(tenantName), Value: "", Path: "/", MaxAge: -1,
		Expires: time.Unix(0, 0), HTTPOnly: true, Secure: s.secure, SameSite: fiber.CookieSameSiteLaxMode,
	})
	if sess == nil {
		return nil, nil
	}
	if err := s.d.Store.DeleteSession(c.UserContext(), tenantID, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("ending session: %w", err)
	}
	s.publish(c, tenantID, event.Ref("user", sess.UserID), ActionLogout, event.OutcomeSuccess, map[string]any{"session": sess.ID})
	return sess, nil
}

// --- CSRF ----------------------------------------------------------------

// CSRFToken returns the browser's CSRF token, setting its cookie when the
// browser has none.
func (s *Service) CSRFToken(c *fiber.Ctx) (string, error) {
	if v := c.Cookies(csrfCookie); len(v) == 43 {
		return v, nil
	}
	v, err := secret.RandomToken(32)
	if err != nil {
		return "", err
	}
	c.Cookie(&fiber.Cookie{
		Name: csrfCookie, Value: v, Path: "/", HTTPOnly: true, Secure: s.secure,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
	// Later reads in this request see it too.
	c.Request().Header.SetCookie(csrfCookie, v)
	return v, nil
}

// CheckCSRF reports whether the posted form's "csrf" field equals the
// browser's CSRF cookie.
func (s *Service) CheckCSRF(c *fiber.Ctx) bool {
	cookie, form := c.Cookies(csrfCookie), c.FormValue("csrf")
	return cookie != "" && subtle.ConstantTimeCompare([]byte(cookie), []byte(form)) == 1
}

// binding is the hash that ties a flow to the browser's CSRF cookie.
func binding(csrf string) string {
	sum := sha256.Sum256([]byte("latch/login-binding/" + csrf))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// --- pages others render -------------------------------------------------

// Page is what the shared pages need to know of the request.
type Page struct {
	// Base is the tenant's base path; Brand is the tenant's display name.
	Base, Brand string
	// UILocales are the preferred languages (OpenID Connect ui_locales).
	UILocales string
}

func (s *Service) pageFor(c *fiber.Ctx, p Page, titleKey string) page {
	lang := pickLanguage(p.UILocales, c.Get(fiber.HeaderAcceptLanguage))
	brand := p.Brand
	if brand == "" {
		brand = "Latch"
	}
	return page{Lang: lang, Brand: brand, Title: text(lang, titleKey), AssetBase: s.basePath + PathAssets}
}

// Consent describes a consent page.
type Consent struct {
	Page
	// Client is the application's name.
	Client string
	// Scopes are the requested scopes; known ones are shown in words.
	Scopes []string
	// Action is the path the form posts to; Hidden its hidden fields.
	Action string
	Hidden []Hidden
}

// RenderConsent shows the consent page. Its form posts "decision" (allow
// or deny), "remember" and "csrf" with the hidden fields.
func (s *Service) RenderConsent(c *fiber.Ctx, cp Consent) error {
	csrf, err := s.CSRFToken(c)
	if err != nil {
		return err
	}
	p := s.pageFor(c, cp.Page, "consent.title")
	scopes := make([]string, 0, len(cp.Scopes))
	for _, sc := range cp.Scopes {
		if hasText("scope." + sc) {
			scopes = append(scopes, text(p.Lang, "scope."+sc))
		} else {
			scopes = append(scopes, sc)
		}
	}
	return s.render(c, fiber.StatusOK, "consent", consentPage{
		page: p, Intro: fmt.Sprintf(text(p.Lang, "consent.intro"), cp.Client),
		Action: s.basePath + cp.Action, CSRF: csrf, Scopes: scopes, Hidden: cp.Hidden,
		Remember: text(p.Lang, "consent.remember"), Allow: text(p.Lang, "consent.allow"), Deny: text(p.Lang, "consent.deny"),
	})
}

// RenderLogoutConfirm asks the user to confirm signing out; the form posts
// "csrf" and the hidden fields to action.
func (s *Service) RenderLogoutConfirm(c *fiber.Ctx, p Page, action string, hidden []Hidden) error {
	csrf, err := s.CSRFToken(c)
	if err != nil {
		return err
	}
	pg := s.pageFor(c, p, "logout.title")
	pg.Message = text(pg.Lang, "logout.confirm")
	return s.render(c, fiber.StatusOK, "logout", logoutPage{page: pg, Action: s.basePath + action, CSRF: csrf, Hidden: hidden, Submit: text(pg.Lang, "logout.submit")})
}

// RenderLoggedOut tells the user they are signed out.
func (s *Service) RenderLoggedOut(c *fiber.Ctx, p Page) error {
	pg := s.pageFor(c, p, "logout.title")
	pg.Message = text(pg.Lang, "logout.done")
	return s.render(c, fiber.StatusOK, "info", infoPage{page: pg})
}

// RenderError shows an error page with the message key (e.g.
// "error.request", "error.csrf") and a detail that is safe to show.
func (s *Service) RenderError(c *fiber.Ctx, status int, p Page, key, detail string) error {
	pg := s.pageFor(c, p, "error.title")
	pg.Error = text(pg.Lang, key)
	if detail != "" {
		pg.Message = truncate(detail, 300)
	}
	return s.render(c, status, "info", infoPage{page: pg})
}

func (s *Service) publish(c *fiber.Ctx, tenantID, actor string, action event.Action, outcome string, detail map[string]any) {
	s.d.Audit.Publish(event.Event{
		Tenant: tenantID, Time: time.Now().UTC(), RequestID: server.RequestID(c), Actor: actor,
		Action: action, Outcome: outcome, Detail: detail,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

type discardAudit struct{}

func (discardAudit) Publish(event.Event) bool { return true }
