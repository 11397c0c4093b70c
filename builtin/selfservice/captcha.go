package selfservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/internal/safehttp"
	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/store"
)

// Captcha verifies the token a CAPTCHA widget put into a form. A provider
// is pluggable: anything with this method.
type Captcha interface {
	// Verify reports whether token proves a person solved the puzzle;
	// remoteIP is the browser's address. An error means the provider
	// could not be asked.
	Verify(ctx context.Context, token, remoteIP string) (bool, error)
}

// Widget is how the pages show the CAPTCHA: the provider's script, the
// element it turns into the puzzle, and the form field it fills.
type Widget struct {
	// ScriptURL is the provider's widget script (https).
	ScriptURL string
	// Class is the class of the element the script looks for.
	Class string
	// SiteKey is the public key put in the element's data-sitekey.
	SiteKey string
	// ResponseField is the form field holding the token.
	ResponseField string
}

// SiteVerify is the builtin provider: the siteverify protocol most
// CAPTCHA services share — a form POST of secret, response and remoteip to
// a verify URL that answers JSON {"success": true|false}. Its HTTP client
// refuses non-public addresses (unless AllowPrivate), follows no redirect
// and gives up after five seconds.
type SiteVerify struct {
	URL, Secret string
	client      *http.Client
}

// NewSiteVerify returns the provider for verifyURL (https, or http with
// allowPrivate, for development and tests).
func NewSiteVerify(verifyURL, secret string, allowPrivate bool) (*SiteVerify, error) {
	u, err := url.Parse(verifyURL)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && (u.Scheme != "http" || !allowPrivate)) {
		return nil, fmt.Errorf("captcha verify url %q: must be an absolute https URL", verifyURL)
	}
	if secret == "" {
		return nil, errors.New("captcha secret is required")
	}
	return &SiteVerify{URL: verifyURL, Secret: secret, client: guardedClient(allowPrivate, 5*time.Second)}, nil
}

// Verify asks the verify URL about token.
func (v *SiteVerify) Verify(ctx context.Context, token, remoteIP string) (bool, error) {
	if token == "" || len(token) > 4096 {
		return false, nil
	}
	form := url.Values{"secret": {v.Secret}, "response": {token}}
	if remoteIP != "" {
		form.Set("remoteip", remoteIP)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if errors.Is(err, safehttp.ErrForbiddenAddress) {
		return false, fmt.Errorf("asking the captcha provider: the address is not public: %w", err)
	}
	if err != nil {
		return false, fmt.Errorf("asking the captcha provider: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("captcha provider answered %d", resp.StatusCode)
	}
	var out struct {
		Success bool `json:"success"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxVerifyBody)).Decode(&out); err != nil {
		return false, fmt.Errorf("decoding the captcha provider's answer: %w", err)
	}
	return out.Success, nil
}

// guardedClient is the shared SSRF-guarded client: public unicast
// addresses only, checked after name resolution, unless allowPrivate; no
// proxy; no redirect; timeout on the whole exchange; bodies capped at
// maxVerifyBody.
func guardedClient(allowPrivate bool, timeout time.Duration) *http.Client {
	return safehttp.NewClient(allowPrivate, timeout, maxVerifyBody)
}

// maxVerifyBody caps the provider's answer.
const maxVerifyBody = 64 << 10

// captchaOn reports whether the tenant shows the CAPTCHA on a page
// ("signup" or "recovery") and one is configured.
func (s *Service) captchaOn(ss Settings, where string) bool {
	if s.d.Captcha == nil {
		return false
	}
	return (where == "signup" && ss.Captcha.Signup) || (where == "recovery" && ss.Captcha.Recovery)
}

// checkCaptcha verifies the posted token; false refuses the form. A
// provider that cannot be asked refuses too (fail closed: the pages it
// guards create accounts and send mail).
func (s *Service) checkCaptcha(ctx context.Context, form url.Values, ip string) bool {
	ok, err := s.d.Captcha.Verify(ctx, form.Get(s.responseField()), ip)
	if err != nil {
		s.d.Log.WarnContext(ctx, "captcha verification failed", "err", err)
		return false
	}
	return ok
}

func (s *Service) responseField() string {
	if s.d.Widget.ResponseField == "" {
		return "captcha_response"
	}
	return s.d.Widget.ResponseField
}

// scriptOrigin is the origin the page's CSP must allow for the widget.
func (s *Service) scriptOrigin() string {
	u, err := url.Parse(s.d.Widget.ScriptURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// PathLoginCaptcha is the page a login flow is sent to once its IP
// address's failures reach login_throttle.captcha_after.
const PathLoginCaptcha = "/login/captcha"

// LoginCaptchaURL is the URL of that page for a flow; the login service
// takes it through UseCaptcha.
func (s *Service) LoginCaptchaURL(base, flowID string) string {
	return s.d.PublicURL + base + PathLoginCaptcha + "?flow=" + url.QueryEscape(flowID)
}

func (s *Service) loginCaptchaView(c *fiber.Ctx, t store.Tenant, base, flowID string) (view, error) {
	v := s.newView(c, t, "captcha.title")
	csrf, err := s.d.Login.CSRFToken(c)
	if err != nil {
		return v, err
	}
	v.Message = tr(v.Lang, "captcha.intro")
	v.Action, v.CSRF, v.Submit = s.basePath()+base+PathLoginCaptcha, csrf, tr(v.Lang, "login.continue")
	v.Hidden = []hidden{{"flow", flowID}}
	v.Captcha = &s.d.Widget
	return v, nil
}

func (s *Service) getLoginCaptcha(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	flowID := c.Query("flow")
	if !ok || s.d.Captcha == nil || flowID == "" || len(flowID) > 128 {
		return s.notFound(c)
	}
	v, err := s.loginCaptchaView(c, t, base, flowID)
	if err != nil {
		return s.fail(c, err)
	}
	return s.render(c, http.StatusOK, v)
}

func (s *Service) postLoginCaptcha(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	if !ok || s.d.Captcha == nil {
		return s.notFound(c)
	}
	form, ok, err := s.form(c, t, base)
	if !ok {
		return err
	}
	flowID := form.Get("flow")
	if flowID == "" || len(flowID) > 128 {
		return s.notFound(c)
	}
	if !s.checkCaptcha(c.UserContext(), form, c.IP()) {
		v, err := s.loginCaptchaView(c, t, base, flowID)
		if err != nil {
			return s.fail(c, err)
		}
		v.Errors = []string{tr(v.Lang, "captcha.failed")}
		return s.render(c, http.StatusBadRequest, v)
	}
	next, ok, err := s.d.Login.MarkHuman(c, t.ID, base, flowID)
	if err != nil {
		return s.fail(c, err)
	}
	if !ok {
		return s.d.Login.RenderError(c, http.StatusBadRequest, login.Page{Base: base, Brand: t.DisplayName}, "login.expired", "")
	}
	return c.Redirect(next, http.StatusSeeOther)
}
