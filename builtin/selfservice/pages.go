package selfservice

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Paths, below a tenant's base ("" or "/t/{tenant}").
const (
	PathSignup  = "/signup"
	PathVerify  = "/signup/verify"
	PathRecover = "/recover"
	PathReset   = "/recover/reset"
)

// Mount adds the pages to app:
//
//	GET/POST {base}/signup           self sign-up (self_service.signup)
//	GET      {base}/signup/verify    the emailed verification link
//	GET/POST {base}/recover          ask for a recovery link (self_service.recovery)
//	GET/POST {base}/recover/reset    the emailed link: set a new password
//	GET/POST {base}/recover/questions         recovery by security questions
//	GET/POST {base}/account/security-questions  a signed-in user's answers
//	GET/POST {base}/login/captcha             the CAPTCHA a login asks for after failures
func (s *Service) Mount(app *fiber.App) {
	for _, prefix := range []string{"", "/t/:tenant"} {
		app.Get(prefix+PathSignup, s.getSignup)
		app.Post(prefix+PathSignup, s.postSignup)
		app.Get(prefix+PathVerify, s.getVerify)
		app.Get(prefix+PathRecover, s.getRecover)
		app.Post(prefix+PathRecover, s.postRecover)
		app.Get(prefix+PathReset, s.getReset)
		app.Post(prefix+PathReset, s.postReset)
		s.mountQuestions(app, prefix)
		app.Get(prefix+PathLoginCaptcha, s.getLoginCaptcha)
		app.Post(prefix+PathLoginCaptcha, s.postLoginCaptcha)
	}
}

type field struct {
	Name, Label, Type, Value, Autocomplete string
	// Optional fields may be left empty.
	Optional bool
}

type hidden struct{ Name, Value string }

type view struct {
	Lang, Brand, Title, Message, AssetBase string
	Errors                                 []string
	Action, CSRF, Submit                   string
	Hidden                                 []hidden
	Fields                                 []field
	Purposes                               []Purpose
	Link, LinkLabel                        string
	// Captcha, when set, shows the CAPTCHA widget in the form.
	Captcha *Widget
}

// tenant resolves the enabled tenant of the request; ok false is a 404.
func (s *Service) tenant(c *fiber.Ctx) (store.Tenant, string, bool, error) {
	name := c.Params("tenant")
	base := ""
	if name == "" {
		name = store.DefaultTenantName
	} else {
		if name == store.DefaultTenantName {
			return store.Tenant{}, "", false, nil
		}
		base = "/t/" + name
	}
	t, err := s.d.Store.GetTenantByName(c.UserContext(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Tenant{}, "", false, nil
	case err != nil:
		return store.Tenant{}, "", false, err
	case !t.Enabled:
		return store.Tenant{}, "", false, nil
	}
	return t, base, true, nil
}

func (s *Service) basePath() string {
	u, err := url.Parse(s.d.PublicURL)
	if err != nil {
		return ""
	}
	return u.Path
}

func (s *Service) newView(c *fiber.Ctx, t store.Tenant, titleKey string) view {
	lang := language(c.Get(fiber.HeaderAcceptLanguage))
	brand := t.DisplayName
	if brand == "" {
		brand = "Latch"
	}
	return view{Lang: lang, Brand: brand, Title: tr(lang, titleKey), AssetBase: s.basePath() + login.PathAssets}
}

func (s *Service) render(c *fiber.Ctx, status int, v view) error {
	var b bytes.Buffer
	if err := s.page.Execute(&b, v); err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Cache-Control", "no-store")
	csp := "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	if v.Captcha != nil {
		if o := s.scriptOrigin(); o != "" {
			csp += "; script-src " + o + "; frame-src " + o + "; connect-src " + o
		}
	}
	c.Set("Content-Security-Policy", csp)
	c.Set("X-Frame-Options", "DENY")
	return c.Status(status).Send(b.Bytes())
}

func (s *Service) fail(c *fiber.Ctx, err error) error {
	status := http.StatusInternalServerError
	if fault.CodeOf(err) == fault.CodeUnavailable || fault.CodeOf(err) == fault.CodeTimeout {
		status = http.StatusServiceUnavailable
	}
	s.d.Log.ErrorContext(c.UserContext(), "self-service failed", "path", c.Path(), "err", err)
	return s.d.Login.RenderError(c, status, login.Page{}, "login.error", "")
}

func (s *Service) notFound(c *fiber.Ctx) error {
	return s.d.Login.RenderError(c, http.StatusNotFound, login.Page{}, "error.request", "")
}

func (s *Service) publish(c *fiber.Ctx, tenantID, actor string, a event.Action, outcome string, detail map[string]any) {
	if s.d.Audit == nil {
		return
	}
	s.d.Audit.Publish(event.Event{Tenant: tenantID, Time: s.now().UTC(), RequestID: server.RequestID(c), Actor: actor, Action: a, Outcome: outcome, Detail: detail})
}

// form reads the guarded form: the CSRF check, then the values. ok false
// has answered already.
func (s *Service) form(c *fiber.Ctx, t store.Tenant, base string) (url.Values, bool, error) {
	if !s.d.Login.CheckCSRF(c) {
		return nil, false, s.d.Login.RenderError(c, http.StatusForbidden, login.Page{Base: base, Brand: t.DisplayName}, "error.csrf", "")
	}
	v, err := url.ParseQuery(string(c.Body()))
	if err != nil || len(v) > 32 {
		return nil, false, s.d.Login.RenderError(c, http.StatusBadRequest, login.Page{Base: base, Brand: t.DisplayName}, "error.request", "")
	}
	for _, vs := range v {
		for _, x := range vs {
			if len(x) > 2048 {
				return nil, false, s.d.Login.RenderError(c, http.StatusBadRequest, login.Page{Base: base, Brand: t.DisplayName}, "error.request", "")
			}
		}
	}
	return v, true, nil
}

// --- sign-up ---

func (s *Service) signupView(c *fiber.Ctx, t store.Tenant, base string, ss Settings, values url.Values) (view, error) {
	v := s.newView(c, t, "signup.title")
	csrf, err := s.d.Login.CSRFToken(c)
	if err != nil {
		return v, err
	}
	v.Action, v.CSRF, v.Submit = s.basePath()+base+PathSignup, csrf, tr(v.Lang, "signup.submit")
	v.Fields = []field{
		{Name: "username", Label: tr(v.Lang, "field.username"), Type: "text", Value: values.Get("username"), Autocomplete: "username"},
		{Name: "email", Label: tr(v.Lang, "field.email"), Type: "email", Value: values.Get("email"), Autocomplete: "email"},
		{Name: "password", Label: tr(v.Lang, "field.new_password"), Type: "password", Autocomplete: "new-password"},
		{Name: "password_confirm", Label: tr(v.Lang, "field.confirm_password"), Type: "password", Autocomplete: "new-password"},
	}
	v.Purposes = ss.Purposes
	if s.captchaOn(ss, "signup") {
		v.Captcha = &s.d.Widget
	}
	return v, nil
}

func (s *Service) getSignup(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	ss := settingsOf(t)
	if !ok || !ss.Signup {
		return s.notFound(c)
	}
	v, err := s.signupView(c, t, base, ss, nil)
	if err != nil {
		return s.fail(c, err)
	}
	return s.render(c, http.StatusOK, v)
}

func (s *Service) postSignup(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	ss := settingsOf(t)
	if !ok || !ss.Signup {
		return s.notFound(c)
	}
	form, ok, err := s.form(c, t, base)
	if !ok {
		return err
	}
	ctx := c.UserContext()
	v, err := s.signupView(c, t, base, ss, form)
	if err != nil {
		return s.fail(c, err)
	}
	if s.captchaOn(ss, "signup") && !s.checkCaptcha(ctx, form, c.IP()) {
		v.Errors = append(v.Errors, tr(v.Lang, "captcha.failed"))
		return s.render(c, http.StatusBadRequest, v)
	}
	username := strings.TrimSpace(form.Get("username"))
	email := strings.TrimSpace(form.Get("email"))
	pw := form.Get("password")
	if !validUsername(username) {
		v.Errors = append(v.Errors, tr(v.Lang, "signup.username"))
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		v.Errors = append(v.Errors, tr(v.Lang, "signup.email"))
	}
	if pw != form.Get("password_confirm") {
		v.Errors = append(v.Errors, tr(v.Lang, "password.mismatch"))
	}
	agreed := form["purpose"]
	var consents []any
	for _, p := range ss.Purposes {
		if slices.Contains(agreed, p.Name) {
			consents = append(consents, map[string]any{"purpose": p.Name, "granted_at": s.now().UTC().Format(time.RFC3339)})
		} else if p.Required {
			v.Errors = append(v.Errors, tr(v.Lang, "signup.purpose")+" "+p.Description)
		}
	}
	if err := s.checkPassword(ctx, t, store.User{}, pw); err != nil {
		msgs, ok := policyMessages(err)
		if !ok {
			return s.fail(c, err)
		}
		v.Errors = append(v.Errors, msgs...)
	}
	if len(v.Errors) > 0 {
		return s.render(c, http.StatusBadRequest, v)
	}
	if s.d.Mail.Addr == "" {
		// No account that could never be verified.
		return s.fail(c, fault.Unavailable.WithMessage("self sign-up needs mail.smtp_addr"))
	}
	hash, err := s.d.Hasher.Hash(pw)
	if err != nil {
		return s.fail(c, err)
	}
	u := store.User{TenantID: t.ID, Username: username, Email: email, Enabled: false, Attributes: map[string]any{AttrPendingSignup: true}}
	if consents != nil {
		u.Attributes[AttrConsents] = consents
	}
	ApplyPassword(&u, hash, s.now())
	u, err = s.d.Store.CreateUser(ctx, u)
	if errors.Is(err, store.ErrConflict) {
		v.Errors = append(v.Errors, tr(v.Lang, "signup.taken"))
		return s.render(c, http.StatusConflict, v)
	} else if err != nil {
		return s.fail(c, err)
	}
	if err := s.sendToken(ctx, t, base, u, kindVerify, PathVerify, ss, tr(v.Lang, "mail.verify.subject"), tr(v.Lang, "mail.verify.intro")); err != nil {
		return s.fail(c, err)
	}
	s.publish(c, t.ID, event.Ref("user", u.ID), ActionSignup, event.OutcomeSuccess, map[string]any{"consents": len(consents)})
	done := s.newView(c, t, "signup.title")
	done.Message = tr(done.Lang, "signup.sent")
	return s.render(c, http.StatusOK, done)
}

// sendToken stores a single-use token for u (by its hash) and emails the
// link carrying it.
func (s *Service) sendToken(ctx context.Context, t store.Tenant, base string, u store.User, kind, path string, ss Settings, subject, intro string) error {
	tok, err := secret.RandomToken(32)
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.d.Store.CreateToken(ctx, store.Token{
		Kind: kind, Key: tokenKey(tok), TenantID: t.ID, Subject: u.ID, Active: true,
		CreatedAt: now, ExpiresAt: now.Add(time.Duration(ss.TokenTTLMinutes) * time.Minute),
	}); err != nil {
		return err
	}
	return s.mailLink(ctx, u.Email, subject, intro, s.d.PublicURL+base+path+"?token="+url.QueryEscape(tok))
}

// takeToken returns the user of a live token of the kind; consume deletes
// it (single use).
func (s *Service) takeToken(ctx context.Context, t store.Tenant, kind, tok string, consume bool) (store.User, bool, error) {
	if tok == "" || len(tok) > 128 {
		return store.User{}, false, nil
	}
	st, err := s.d.Store.GetToken(ctx, t.ID, kind, tokenKey(tok))
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	} else if err != nil {
		return store.User{}, false, err
	}
	if !st.Active || !s.now().Before(st.ExpiresAt) {
		return store.User{}, false, nil
	}
	if consume {
		if err := s.d.Store.DeleteToken(ctx, t.ID, kind, st.Key); errors.Is(err, store.ErrNotFound) {
			return store.User{}, false, nil // used meanwhile
		} else if err != nil {
			return store.User{}, false, err
		}
	}
	u, err := s.d.Store.GetUser(ctx, t.ID, st.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	}
	return u, err == nil, err
}

func (s *Service) getVerify(c *fiber.Ctx) error {
	t, _, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	if !ok {
		return s.notFound(c)
	}
	ctx := c.UserContext()
	v := s.newView(c, t, "verify.title")
	u, ok, err := s.takeToken(ctx, t, kindVerify, c.Query("token"), true)
	if err != nil {
		return s.fail(c, err)
	}
	if !ok {
		v.Errors = []string{tr(v.Lang, "token.invalid")}
		return s.render(c, http.StatusBadRequest, v)
	}
	u.Enabled, u.EmailVerified = true, true
	delete(u.Attributes, AttrPendingSignup)
	if _, err := s.d.Store.UpdateUser(ctx, u); err != nil {
		return s.fail(c, err)
	}
	s.publish(c, t.ID, event.Ref("user", u.ID), ActionVerified, event.OutcomeSuccess, nil)
	v.Message = tr(v.Lang, "verify.done")
	return s.render(c, http.StatusOK, v)
}

// --- recovery ---

func (s *Service) getRecover(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	if !ok || !settingsOf(t).Recovery {
		return s.notFound(c)
	}
	v := s.newView(c, t, "recover.title")
	if v.CSRF, err = s.d.Login.CSRFToken(c); err != nil {
		return s.fail(c, err)
	}
	v.Message = tr(v.Lang, "recover.intro")
	v.Action, v.Submit = s.basePath()+base+PathRecover, tr(v.Lang, "recover.submit")
	v.Fields = []field{{Name: "identifier", Label: tr(v.Lang, "field.identifier"), Type: "text", Autocomplete: "username"}}
	if len(settingsOf(t).Questions) > 0 {
		v.Link, v.LinkLabel = s.basePath()+base+PathRecoverQuestions, tr(v.Lang, "recover.by_questions")
	}
	if s.captchaOn(settingsOf(t), "recovery") {
		v.Captcha = &s.d.Widget
	}
	return s.render(c, http.StatusOK, v)
}

// postRecover sends a link when the account exists, can sign in and has
// an email address, and answers the same page in every case, so that the
// page does not tell which accounts exist.
func (s *Service) postRecover(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	ss := settingsOf(t)
	if !ok || !ss.Recovery {
		return s.notFound(c)
	}
	form, ok, err := s.form(c, t, base)
	if !ok {
		return err
	}
	ctx := c.UserContext()
	v := s.newView(c, t, "recover.title")
	if s.captchaOn(ss, "recovery") && !s.checkCaptcha(ctx, form, c.IP()) {
		v.Errors = []string{tr(v.Lang, "captcha.failed")}
		return s.render(c, http.StatusBadRequest, v)
	}
	id := strings.TrimSpace(form.Get("identifier"))
	if u, found, err := s.findAccount(ctx, t, id); err != nil {
		s.d.Log.WarnContext(ctx, "password recovery: looking up the account", "err", err)
	} else if found {
		if err := s.sendToken(ctx, t, base, u, kindRecover, PathReset, ss, tr(v.Lang, "mail.recover.subject"), tr(v.Lang, "mail.recover.intro")); err != nil {
			s.d.Log.WarnContext(ctx, "password recovery: sending the link", "err", err)
		}
		s.publish(c, t.ID, event.Ref("user", u.ID), ActionRecovery, "requested", nil)
	}
	v.Message = tr(v.Lang, "recover.sent")
	return s.render(c, http.StatusOK, v)
}

func (s *Service) findAccount(ctx context.Context, t store.Tenant, id string) (store.User, bool, error) {
	if id == "" || len(id) > 256 {
		return store.User{}, false, nil
	}
	u, err := s.d.Store.GetUserByUsername(ctx, t.ID, id)
	if errors.Is(err, store.ErrNotFound) && strings.Contains(id, "@") {
		var us []store.User
		us, _, err = s.d.Store.ListUsers(ctx, t.ID, store.UserQuery{Email: id, Page: store.Page{Limit: 2}})
		switch {
		case err != nil:
		case len(us) == 1:
			u = us[0]
		default:
			err = store.ErrNotFound // none, or an address two accounts share
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	} else if err != nil {
		return store.User{}, false, err
	}
	if !u.Enabled || u.Email == "" {
		return store.User{}, false, nil
	}
	return u, true, nil
}

func (s *Service) resetView(c *fiber.Ctx, t store.Tenant, base, tok string) (view, error) {
	v := s.newView(c, t, "reset.title")
	csrf, err := s.d.Login.CSRFToken(c)
	if err != nil {
		return v, err
	}
	v.Action, v.CSRF, v.Submit = s.basePath()+base+PathReset, csrf, tr(v.Lang, "reset.submit")
	v.Hidden = []hidden{{"token", tok}}
	v.Fields = []field{
		{Name: "password", Label: tr(v.Lang, "field.new_password"), Type: "password", Autocomplete: "new-password"},
		{Name: "password_confirm", Label: tr(v.Lang, "field.confirm_password"), Type: "password", Autocomplete: "new-password"},
	}
	return v, nil
}

func (s *Service) getReset(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	if !ok || !settingsOf(t).Recovery {
		return s.notFound(c)
	}
	tok := c.Query("token")
	if _, ok, err := s.takeToken(c.UserContext(), t, kindRecover, tok, false); err != nil {
		return s.fail(c, err)
	} else if !ok {
		v := s.newView(c, t, "reset.title")
		v.Errors = []string{tr(v.Lang, "token.invalid")}
		return s.render(c, http.StatusBadRequest, v)
	}
	v, err := s.resetView(c, t, base, tok)
	if err != nil {
		return s.fail(c, err)
	}
	return s.render(c, http.StatusOK, v)
}

func (s *Service) postReset(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	if !ok || !settingsOf(t).Recovery {
		return s.notFound(c)
	}
	form, ok, err := s.form(c, t, base)
	if !ok {
		return err
	}
	ctx := c.UserContext()
	tok := form.Get("token")
	v, err := s.resetView(c, t, base, tok)
	if err != nil {
		return s.fail(c, err)
	}
	u, ok, err := s.takeToken(ctx, t, kindRecover, tok, false)
	if err != nil {
		return s.fail(c, err)
	}
	if !ok {
		v.Action, v.Fields = "", nil
		v.Errors = []string{tr(v.Lang, "token.invalid")}
		return s.render(c, http.StatusBadRequest, v)
	}
	pw := form.Get("password")
	if pw != form.Get("password_confirm") {
		v.Errors = []string{tr(v.Lang, "password.mismatch")}
		return s.render(c, http.StatusBadRequest, v)
	}
	if err := s.SetPassword(ctx, t.ID, u.ID, pw, true); err != nil {
		msgs, ok := policyMessages(err)
		if !ok {
			return s.fail(c, err)
		}
		v.Errors = msgs
		return s.render(c, http.StatusBadRequest, v)
	}
	// Single use: the link is spent once the password is set.
	if err := s.d.Store.DeleteToken(ctx, t.ID, kindRecover, tokenKey(tok)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return s.fail(c, err)
	}
	if u, err := s.d.Store.GetUser(ctx, t.ID, u.ID); err == nil && !u.LockedUntil.IsZero() {
		u.LockedUntil = time.Time{} // a recovered account is no longer locked out
		delete(u.Attributes, "latch.failed_logins")
		_, _ = s.d.Store.UpdateUser(ctx, u)
	}
	s.publish(c, t.ID, event.Ref("user", u.ID), ActionPasswordChanged, event.OutcomeSuccess, map[string]any{"via": "recovery"})
	done := s.newView(c, t, "reset.title")
	done.Message = tr(done.Lang, "reset.done")
	return s.render(c, http.StatusOK, done)
}

// policyMessages returns the per-rule messages of a refused password.
func policyMessages(err error) ([]string, bool) {
	var pe *password.PolicyError
	if !errors.As(err, &pe) {
		return nil, false
	}
	out := make([]string, len(pe.Violations))
	for i, v := range pe.Violations {
		out[i] = v.Message
	}
	return out, true
}

// validUsername accepts 1 to 128 bytes of printable characters without
// spaces or '/' (which separates a user store domain from a name).
func validUsername(u string) bool {
	if u == "" || len(u) > 128 || !utf8.ValidString(u) {
		return false
	}
	for _, r := range u {
		if r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
