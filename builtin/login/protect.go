package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/throttle"
)

// Passwords is what a login needs of the account protection service
// (builtin/selfservice implements it): whether a user must set a new
// password before the login completes, setting it under the tenant's
// policy, and the idle-account lock.
type Passwords interface {
	// MustChangePassword answers "forced", "expired" or "".
	MustChangePassword(ctx context.Context, tenantID, userID string) (string, error)
	// SetPassword checks pw under the policy and stores it; a refused
	// password wraps a *password.PolicyError.
	SetPassword(ctx context.Context, tenantID, userID, pw string, revoke bool) error
	// CheckIdle reports (true) an account locked for being idle too long.
	CheckIdle(ctx context.Context, tenantID, userID string) (bool, error)
}

// UsePasswords makes logins apply p (forced or expired password changes,
// the idle-account lock). Call it before serving.
func (s *Service) UsePasswords(p Passwords) { s.passwords = p }

// SettingLoginThrottle is the tenant setting of the per-IP brute-force
// throttle of the login form.
const SettingLoginThrottle = "login_throttle"

// ThrottleSetting is the tenant setting login_throttle: every credential
// submitted to the login form from one IP address spends one unit of the
// named throttler instance; past MaxAttempts in WindowSeconds the form
// answers 429 before any credential is checked.
type ThrottleSetting struct {
	// Throttler names a throttler instance the tenant enables
	// (throttle.local, throttle.redis or a plugin).
	Throttler string `json:"throttler"`
	// MaxAttempts per window; default 10.
	MaxAttempts int64 `json:"max_attempts,omitempty"`
	// WindowSeconds; default 300.
	WindowSeconds int64 `json:"window_seconds,omitempty"`
	// CaptchaAfter, when > 0 and a CAPTCHA is configured (UseCaptcha),
	// makes a login flow pass the CAPTCHA before it checks more
	// credentials once CaptchaAfter credentials from the IP address
	// failed within the window.
	CaptchaAfter int64 `json:"captcha_after,omitempty"`
}

// UseCaptcha makes logins send the browser to url(base, flow) (a page
// that shows the CAPTCHA and then calls MarkHuman) once the IP address's
// failures reach login_throttle.captcha_after.
func (s *Service) UseCaptcha(url func(base, flowID string) string) { s.captchaURL = url }

// MarkHuman records that the browser of the login flow solved the CAPTCHA;
// it returns the URL to continue the flow at, or false when the flow is
// not this browser's or has ended.
func (s *Service) MarkHuman(c *fiber.Ctx, tenantID, base, flowID string) (string, bool, error) {
	ctx := c.UserContext()
	f, err := s.loadFlow(ctx, tenantID, flowID)
	if err != nil || f.Binding != binding(c.Cookies(csrfCookie)) {
		return "", false, nil //nolint:nilerr // an unknown or foreign flow is a refusal, not a failure
	}
	f.NeedHuman = false
	if err := s.saveFlow(ctx, tenantID, f, true); err != nil {
		return "", false, err
	}
	return s.publicURL + base + PathLogin + "?flow=" + f.ID, true, nil
}

// loginThrottle returns the tenant's login_throttle and its throttler, or
// nil when there is none.
func (s *Service) loginThrottle(ctx context.Context, t Tenant) (*ThrottleSetting, throttle.Throttler, *extension.Instance, error) {
	st, err := s.d.Store.GetTenantByName(ctx, t.Name)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("loading tenant: %w", err)
	}
	raw, ok := st.Settings[SettingLoginThrottle]
	if !ok || raw == nil {
		return nil, nil, nil, nil
	}
	var lt ThrottleSetting
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &lt); err != nil || lt.Throttler == "" {
		s.d.Log.WarnContext(ctx, "tenant setting login_throttle is not valid", "tenant", t.Name)
		return nil, nil, nil, nil
	}
	if lt.MaxAttempts <= 0 {
		lt.MaxAttempts = 10
	}
	if lt.WindowSeconds <= 0 {
		lt.WindowSeconds = 300
	}
	var inst *extension.Instance
	for _, i := range s.d.Authenticators.Enabled(t.Name, extension.KindThrottler) {
		if i.Name() == lt.Throttler {
			inst = i
		}
	}
	th, ok := extension.As[throttle.Throttler](inst)
	if inst == nil || !ok {
		s.d.Log.WarnContext(ctx, "login_throttle names no throttler the tenant enables", "tenant", t.Name, "throttler", lt.Throttler)
		return nil, nil, nil, nil
	}
	return &lt, th, inst, nil
}

// spend asks the throttler for one unit of key under rate per window.
func spend(ctx context.Context, th throttle.Throttler, inst *extension.Instance, tenant, key string, rate, window int64) (abi.AllowResponse, error) {
	req := abi.AllowRequest{Tenant: tenant, Key: key, Cost: 1, Limit: abi.Limit{Rate: rate, PeriodMillis: window * 1000, Burst: rate}}
	var resp abi.AllowResponse
	err := extension.Call(ctx, inst, abi.OpAllow, func(ctx context.Context) error {
		var err error
		resp, err = throttle.Check(th.Allow(ctx, req))
		return err
	})
	return resp, err
}

// failed counts a failed credential of the flow's IP address toward the
// CAPTCHA threshold; once it is reached the flow needs the CAPTCHA.
func (s *Service) failed(c *fiber.Ctx, t Tenant, f *flow) {
	if s.captchaURL == nil {
		return
	}
	ctx := c.UserContext()
	lt, th, inst, err := s.loginThrottle(ctx, t)
	if err != nil || lt == nil || lt.CaptchaAfter <= 0 {
		return
	}
	if lt.CaptchaAfter == 1 {
		f.NeedHuman = true
	} else if resp, err := spend(ctx, th, inst, t.Name, "login:fail:"+c.IP(), lt.CaptchaAfter-1, lt.WindowSeconds); err != nil {
		s.d.Log.WarnContext(ctx, "counting a failed login", "err", err)
		return
	} else if !resp.Allowed {
		f.NeedHuman = true
	}
	if f.NeedHuman {
		if err := s.saveFlow(ctx, t.ID, f, true); err != nil {
			s.d.Log.WarnContext(ctx, "saving the login flow", "err", err)
		}
	}
}

// throttled spends one attempt of the client's IP address; it answers
// true (and has rendered the 429 page) when the address is over its limit.
// A throttler that fails lets the attempt through (the account lock still
// bounds guessing) and is logged.
func (s *Service) throttled(c *fiber.Ctx, t Tenant, pg Page) (bool, error) {
	ctx := c.UserContext()
	lt, th, inst, err := s.loginThrottle(ctx, t)
	if err != nil || lt == nil {
		return false, err
	}
	resp, err := spend(ctx, th, inst, t.Name, "login:ip:"+c.IP(), lt.MaxAttempts, lt.WindowSeconds)
	if err != nil {
		s.d.Log.WarnContext(ctx, "login throttle failed; letting the attempt through", "err", err)
		return false, nil
	}
	if resp.Allowed {
		return false, nil
	}
	retry := (time.Duration(resp.RetryAfterMillis)*time.Millisecond + time.Second - 1) / time.Second
	c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(int64(retry), 10))
	s.publish(c, t.ID, "anonymous", ActionLogin, event.OutcomeDenied, map[string]any{"reason": "throttled", "ip": c.IP()})
	return true, s.RenderError(c, http.StatusTooManyRequests, pg, "login.throttled", "")
}

// protect runs before a login completes: the idle-account lock, then a
// forced or expired password, which turns the flow into a password change
// (done is false: the change form is shown).
func (s *Service) protect(c *fiber.Ctx, t Tenant, pg Page, f *flow) (done bool, err error) {
	if f.Subject != "" && f.PasswordChange == "" {
		if suspended, err := s.checkSuspension(c, t.ID, f.Subject); err != nil {
			return false, s.fail(c, pg, err)
		} else if suspended {
			s.publish(c, t.ID, event.Ref("user", f.Subject), ActionLogin, event.OutcomeDenied, map[string]any{"reason": "suspended"})
			_ = s.d.Store.DeleteToken(c.UserContext(), t.ID, kindFlow, f.ID)
			return false, s.RenderError(c, http.StatusForbidden, pg, "login.suspended", "")
		}
	}
	if s.passwords == nil || f.Subject == "" {
		return true, nil
	}
	ctx := c.UserContext()
	if f.PasswordChange == "" {
		locked, err := s.passwords.CheckIdle(ctx, t.ID, f.Subject)
		if err != nil {
			return false, s.fail(c, pg, err)
		}
		if locked {
			s.publish(c, t.ID, event.Ref("user", f.Subject), ActionLogin, event.OutcomeDenied, map[string]any{"reason": "idle_account_locked"})
			_ = s.d.Store.DeleteToken(ctx, t.ID, kindFlow, f.ID)
			return false, s.RenderError(c, http.StatusForbidden, pg, "login.idle", "")
		}
		why, err := s.passwords.MustChangePassword(ctx, t.ID, f.Subject)
		if err != nil {
			return false, s.fail(c, pg, err)
		}
		if why == "" {
			return true, nil
		}
		f.PasswordChange = why
		if err := s.saveFlow(ctx, t.ID, f, true); err != nil {
			return false, s.fail(c, pg, err)
		}
		return false, c.Redirect(s.publicURL+t.Base+PathLogin+"?flow="+f.ID, http.StatusSeeOther)
	}
	return false, s.fail(c, pg, errors.New("password change pending"))
}

// checkSuspension reports (true) a suspended user. A suspension whose end
// has passed is lifted here, at the user's next login. Users the kernel
// store does not hold (user store domains) are never suspended.
func (s *Service) checkSuspension(c *fiber.Ctx, tenantID, userID string) (bool, error) {
	ctx := c.UserContext()
	for range 3 {
		u, err := s.d.Store.GetUser(ctx, tenantID, userID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("checking suspension: %w", err)
		}
		sus, ok := store.SuspensionOf(u)
		if !ok {
			return false, nil
		}
		if sus.Active(time.Now()) {
			return true, nil
		}
		store.Unsuspend(&u)
		_, err = s.d.Store.UpdateUser(ctx, u)
		if errors.Is(err, store.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("lifting an ended suspension: %w", err)
		}
		s.publish(c, tenantID, event.Ref("user", userID), event.Action("user.unsuspend"), event.OutcomeSuccess, map[string]any{"reason": "suspension_ended"})
		return false, nil
	}
	return false, fmt.Errorf("lifting an ended suspension: %w", store.ErrVersionMismatch)
}

// renderPasswordChange shows the form that sets a new password.
func (s *Service) renderPasswordChange(c *fiber.Ctx, t Tenant, pg Page, f *flow, csrf string, status int, errs ...string) error {
	p := s.pageFor(c, pg, "pwchange.title")
	p.Message = text(p.Lang, "pwchange."+f.PasswordChange)
	if len(errs) > 0 {
		p.Error = errs[0]
		for _, e := range errs[1:] {
			p.Error += " " + e
		}
	}
	lp := loginPage{page: p, Action: s.basePath + t.Base + PathLogin, Flow: f.ID, CSRF: csrf, Submit: text(p.Lang, "login.submit")}
	lp.Fields = []field{
		{Name: "new_password", Type: abi.FieldPassword, InputType: "password", Label: text(p.Lang, "field.new_pw"), Required: true, Autocomplete: "new-password", Autofocus: true},
		{Name: "confirm_password", Type: abi.FieldPassword, InputType: "password", Label: text(p.Lang, "field.confirm_pw"), Required: true, Autocomplete: "new-password"},
	}
	return s.render(c, status, "login", lp)
}

// changePassword takes the posted new password of a flow that requires
// one and, once the policy accepts it, completes the login.
func (s *Service) changePassword(c *fiber.Ctx, t Tenant, pg Page, f *flow, params map[string][]string) error {
	lang := pickLanguage(pg.UILocales, c.Get(fiber.HeaderAcceptLanguage))
	pw, confirm := first(params["new_password"]), first(params["confirm_password"])
	csrf := c.FormValue("csrf")
	if pw != confirm {
		return s.renderPasswordChange(c, t, pg, f, csrf, http.StatusBadRequest, text(lang, "password.mismatch"))
	}
	err := s.passwords.SetPassword(c.UserContext(), t.ID, f.Subject, pw, true)
	var pe *password.PolicyError
	switch {
	case errors.As(err, &pe):
		msgs := make([]string, len(pe.Violations))
		for i, v := range pe.Violations {
			msgs[i] = v.Message
		}
		return s.renderPasswordChange(c, t, pg, f, csrf, http.StatusBadRequest, msgs...)
	case fault.CodeOf(err) == fault.CodeInvalidRequest:
		return s.renderPasswordChange(c, t, pg, f, csrf, http.StatusBadRequest, text(lang, "password.refused"))
	case err != nil:
		return s.fail(c, pg, err)
	}
	s.publish(c, t.ID, event.Ref("user", f.Subject), "user.password_changed", event.OutcomeSuccess, map[string]any{"via": "login", "reason": f.PasswordChange})
	f.PasswordChange = ""
	return s.finish(c, t, pg, f)
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// NeedsStepUp reports whether a session of assurance sessionACR falls short
// of acrValues (an authorization request's space-separated preference
// list): none of the values is the session's, and every value is a level
// (a number, like the "1" and "2" logins record) above it. Values that are
// not numbers cannot be compared and never ask for a step-up.
func NeedsStepUp(sessionACR, acrValues string) bool {
	have, err := strconv.Atoi(sessionACR)
	if err != nil {
		return false
	}
	want := strings.Fields(acrValues)
	if len(want) == 0 || len(want) > 16 {
		return false
	}
	for _, v := range want {
		n, err := strconv.Atoi(v)
		if err != nil || n <= have {
			return false
		}
	}
	return true
}

// stepUp seeds a new flow with the browser's session when its ACR is
// lower than the flow asks: the session's user is the flow's subject and
// its first step counts as done, so only the later steps run (a second
// factor), and their methods join the session's.
func (s *Service) stepUp(c *fiber.Ctx, t Tenant, f *flow) error {
	sess, err := s.Session(c, t.ID, t.Name)
	if err != nil {
		return err
	}
	if sess == nil || !NeedsStepUp(sess.ACR, f.ACRValues) {
		return nil
	}
	f.Subject, f.Proven, f.Force = sess.UserID, true, true
	f.AMR = append([]string(nil), sess.AMR...)
	if u, err := s.d.Store.GetUser(c.UserContext(), t.ID, sess.UserID); err == nil {
		f.Username = u.Username
	}
	f.History = append(f.History, adaptive.Entry{Kind: adaptive.EntryStep, Step: 1, Success: true, Subject: sessionSubject(sess, f.Username)})
	s.publish(c, t.ID, event.Ref("user", sess.UserID), ActionLogin, "step_up", map[string]any{"from_acr": sess.ACR, "acr_values": f.ACRValues})
	return nil
}
