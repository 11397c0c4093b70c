package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// flowVersion is the version of flow record this build writes and reads.
const flowVersion = 1

// maxFormValue bounds every submitted form value.
const maxFormValue = 4096

// flow is a login in progress, kept as a store.Token of kind "login_flow"
// under its id until it completes or expires.
type flow struct {
	Version   int       `json:"v"`
	ID        string    `json:"-"`
	Binding   string    `json:"binding"`
	ReturnTo  string    `json:"return_to"`
	Force     bool      `json:"force,omitempty"`
	LoginHint string    `json:"login_hint,omitempty"`
	UILocales string    `json:"ui_locales,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Step is the 1-based step running; Authenticator the instance
	// chosen for it; State what that authenticator asked to keep.
	Step          int    `json:"step"`
	Authenticator string `json:"authenticator,omitempty"`
	State         []byte `json:"state,omitempty"`
	// Subject, Username and AMR accumulate over completed steps.
	Subject  string   `json:"subject,omitempty"`
	Username string   `json:"username,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	// Client is the application signed in to; ACRValues what it asked
	// for; SelectedACR what the script chose.
	Client      string `json:"client,omitempty"`
	ACRValues   string `json:"acr_values,omitempty"`
	SelectedACR string `json:"selected_acr,omitempty"`
	// Request is the request that started the login, as adaptive scripts
	// see it on every evaluation; History what happened since.
	Request adaptive.Request `json:"request"`
	History []adaptive.Entry `json:"history,omitempty"`
	// Offered are the instance names the current step offers;
	// ScriptParams the script's parameters for them; Prompt a form the
	// script asked for instead of a step.
	Offered      []string                 `json:"offered,omitempty"`
	ScriptParams map[string]string        `json:"script_params,omitempty"`
	Prompt       *adaptive.PromptDecision `json:"prompt,omitempty"`
	// Claimed is the user an identifier-first step named (identifier.go):
	// a claim, not the flow's subject; Prefer the authenticator that step
	// asked the next one to start with; Proven records that a step which
	// proves something succeeded.
	Claimed string `json:"claimed,omitempty"`
	Prefer  string `json:"prefer,omitempty"`
	Proven  bool   `json:"proven,omitempty"`
	// PasswordChange, when set ("forced" or "expired"), is a new password
	// the user must set before the login completes (protect.go).
	PasswordChange string `json:"password_change,omitempty"`
	// NeedHuman asks for the CAPTCHA before more credentials are checked
	// (protect.go).
	NeedHuman bool `json:"need_human,omitempty"`
	// Attributes are the user attributes the completed flow releases
	// from a federated attribute step (attributes.go); nil when the
	// attribute step was local.
	Attributes map[string]any `json:"attributes,omitempty"`
}

func (s *Service) loadFlow(ctx context.Context, tenantID, id string) (*flow, error) {
	if id == "" || len(id) > 64 {
		return nil, store.ErrNotFound
	}
	tok, err := s.d.Store.GetToken(ctx, tenantID, kindFlow, id)
	if err != nil {
		return nil, err
	}
	f := &flow{}
	if err := json.Unmarshal(tok.Data, f); err != nil || f.Version != flowVersion {
		return nil, store.ErrNotFound
	}
	f.ID = id
	return f, nil
}

// saveFlow writes f, replacing its previous record.
func (s *Service) saveFlow(ctx context.Context, tenantID string, f *flow, replace bool) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding login flow: %w", err)
	}
	if replace {
		if err := s.d.Store.DeleteToken(ctx, tenantID, kindFlow, f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("saving login flow: %w", err)
		}
	}
	err = s.d.Store.CreateToken(ctx, store.Token{
		Kind: kindFlow, Key: f.ID, TenantID: tenantID, Subject: f.Subject, Active: true,
		Data: data, CreatedAt: f.CreatedAt, ExpiresAt: f.ExpiresAt,
	})
	if err != nil {
		return fmt.Errorf("saving login flow: %w", err)
	}
	return nil
}

// getLogin starts a login (?return_to=…) or shows the current step of one
// (?flow=…).
func (s *Service) getLogin(c *fiber.Ctx) error {
	t, ok, err := s.resolve(c)
	if err != nil {
		return s.fail(c, Page{}, err)
	}
	if !ok {
		return s.RenderError(c, http.StatusNotFound, Page{}, "error.request", "")
	}
	pg := Page{Base: t.Base, Brand: t.DisplayName}
	csrf, err := s.CSRFToken(c)
	if err != nil {
		return s.fail(c, pg, err)
	}
	ctx := c.UserContext()
	if id := c.Query("flow"); id != "" {
		f, err := s.loadFlow(ctx, t.ID, id)
		if err != nil || f.Binding != binding(csrf) {
			return s.RenderError(c, http.StatusBadRequest, pg, "login.expired", "")
		}
		pg.UILocales = f.UILocales
		if f.PasswordChange != "" {
			return s.renderPasswordChange(c, t, pg, f, csrf, http.StatusOK)
		}
		if f.Prompt != nil {
			return s.renderPrompt(c, t, pg, f, csrf, "")
		}
		if opt := c.Query("option"); opt != "" && opt != f.Authenticator {
			if !slices.Contains(f.Offered, opt) {
				return s.RenderError(c, http.StatusBadRequest, pg, "error.request", "")
			}
			f.Authenticator, f.State = opt, nil
			if err := s.saveFlow(ctx, t.ID, f, true); err != nil {
				return s.fail(c, pg, err)
			}
		}
		return s.runStep(c, t, pg, f, csrf, nil)
	}

	returnTo := c.Query("return_to")
	if !validReturn(t.Base, returnTo) {
		return s.RenderError(c, http.StatusBadRequest, pg, "error.request", "")
	}
	pg.UILocales = truncate(c.Query("ui_locales"), 200)
	if c.Query("force") != "1" {
		if sess, err := s.Session(c, t.ID, t.Name); err != nil {
			return s.fail(c, pg, err)
		} else if sess != nil {
			return c.Redirect(s.publicURL+returnTo, http.StatusFound)
		}
	}
	id, err := secret.RandomToken(24)
	if err != nil {
		return s.fail(c, pg, err)
	}
	now := time.Now()
	f := &flow{
		Version: flowVersion, ID: id, Binding: binding(csrf), ReturnTo: returnTo,
		Force: c.Query("force") == "1", LoginHint: truncate(c.Query("login_hint"), 256),
		UILocales: pg.UILocales, CreatedAt: now, ExpiresAt: now.Add(DefaultFlowLifetime), Step: 1,
		Client: truncate(c.Query("client_id"), 256), ACRValues: truncate(c.Query("acr_values"), 512),
		Request: scriptRequest(c),
	}
	if c.Query("step_up") == "1" {
		if err := s.stepUp(c, t, f); err != nil {
			return s.fail(c, pg, err)
		}
	}
	// The first decision (a script may refuse at once); the flow then
	// continues at a URL of its own, so a reload shows the same step.
	return s.advance(c, t, pg, f, false)
}

// scriptRequest is the request as adaptive scripts see it.
func scriptRequest(c *fiber.Ctx) adaptive.Request {
	r := adaptive.Request{IP: c.IP(), Headers: map[string]string{}, Params: map[string][]string{}, Cookies: map[string]string{}}
	for k, v := range safeHeaders(c) {
		if len(v) > 0 {
			r.Headers[k] = truncate(v[0], 1024)
		}
	}
	if q, err := url.ParseQuery(string(c.Request().URI().QueryString())); err == nil {
		for k, v := range q {
			r.Params[k] = v
		}
	}
	for k, v := range c.Request().Header.Cookies() {
		name := string(k)
		if name != csrfCookie && !strings.HasPrefix(name, sessionCookie) && len(r.Cookies) < 32 {
			r.Cookies[name] = truncate(string(v), 1024)
		}
	}
	return r
}

// postLogin submits the current step's form.
func (s *Service) postLogin(c *fiber.Ctx) error {
	t, ok, err := s.resolve(c)
	if err != nil {
		return s.fail(c, Page{}, err)
	}
	if !ok {
		return s.RenderError(c, http.StatusNotFound, Page{}, "error.request", "")
	}
	pg := Page{Base: t.Base, Brand: t.DisplayName}
	if !s.CheckCSRF(c) {
		return s.RenderError(c, http.StatusForbidden, pg, "error.csrf", "")
	}
	ctx := c.UserContext()
	f, err := s.loadFlow(ctx, t.ID, c.FormValue("flow"))
	if err != nil || f.Binding != binding(c.Cookies(csrfCookie)) {
		return s.RenderError(c, http.StatusBadRequest, pg, "login.expired", "")
	}
	pg.UILocales = f.UILocales
	params, err := formParams(c)
	if err != nil {
		return s.RenderError(c, http.StatusBadRequest, pg, "error.request", "")
	}
	if f.PasswordChange != "" && s.passwords != nil {
		return s.changePassword(c, t, pg, f, params)
	}
	if f.Prompt != nil {
		// The answer to a script's prompt goes to the script.
		f.History = append(f.History, adaptive.Entry{Kind: adaptive.EntryPrompt, Success: true, Values: params})
		f.Prompt = nil
		return s.advance(c, t, pg, f, true)
	}
	if limited, err := s.throttled(c, t, pg); limited || err != nil {
		if err != nil {
			return s.fail(c, pg, err)
		}
		return nil
	}
	if f.NeedHuman && s.captchaURL != nil {
		return c.Redirect(s.captchaURL(t.Base, f.ID), http.StatusSeeOther)
	}
	return s.runStep(c, t, pg, f, c.FormValue("csrf"), params)
}

// formParams returns the posted form without the service's own fields.
func formParams(c *fiber.Ctx) (map[string][]string, error) {
	form, err := url.ParseQuery(string(c.Body()))
	if err != nil {
		return nil, err
	}
	delete(form, "csrf")
	delete(form, "flow")
	for k, vs := range form {
		if len(k) > 128 || len(vs) > 8 {
			return nil, errors.New("oversized form")
		}
		for _, v := range vs {
			if len(v) > maxFormValue {
				return nil, errors.New("oversized form value")
			}
		}
	}
	return form, nil
}

// options lists the authenticators the tenant offers.
func (s *Service) options(t Tenant) []*extension.Instance {
	return s.d.Authenticators.Enabled(t.Name, extension.KindAuthenticator)
}

// runStep runs the flow's current authenticator with params (nil on a
// GET) and answers with its challenge, an error, or — once it
// authenticates — a new session and a redirect to the flow's return path.
func (s *Service) runStep(c *fiber.Ctx, t Tenant, pg Page, f *flow, csrf string, params map[string][]string) error {
	ctx := c.UserContext()
	var opts []*extension.Instance
	for _, o := range s.options(t) {
		if slices.Contains(f.Offered, o.Name()) {
			opts = append(opts, o)
		}
	}
	if len(opts) == 0 {
		return s.fail(c, pg, fmt.Errorf("step %d of the login offers no authenticator tenant %q enables", f.Step, t.Name))
	}
	inst := opts[0]
	for _, o := range opts {
		if o.Name() == f.Authenticator {
			inst = o
		}
	}
	a, ok := extension.As[authn.Authenticator](inst)
	if !ok {
		return s.fail(c, pg, fmt.Errorf("instance %q is a %T, not an authenticator", inst.Name(), inst.Value()))
	}
	if params == nil {
		params = map[string][]string{}
	}
	req := abi.AuthenticateRequest{
		Tenant: t.Name, FlowID: f.ID, Step: f.Step, Params: params,
		Headers: safeHeaders(c), IP: c.IP(), KnownSubject: f.Subject, State: f.State,
		CallbackURL:  s.publicURL + t.Base + PathLogin + "?flow=" + url.QueryEscape(f.ID),
		Config:       inst.Config(),
		ScriptParams: f.ScriptParams,
	}
	var resp abi.AuthenticateResponse
	err := extension.Call(ctx, inst, abi.OpAuthenticate, func(ctx context.Context) error {
		var err error
		resp, err = authn.Check(a.Authenticate(ctx, req))
		return err
	})
	if err != nil {
		return s.fail(c, pg, err)
	}
	for _, ck := range resp.SetCookies {
		c.Cookie(&fiber.Cookie{Name: ck.Name, Value: ck.Value, MaxAge: int(ck.MaxAgeSeconds), Path: "/", HTTPOnly: true, Secure: s.secure, SameSite: fiber.CookieSameSiteLaxMode})
	}
	switch resp.Outcome {
	case abi.OutcomeChallenge:
		if !slices.Equal(resp.State, f.State) || f.Authenticator != inst.Name() {
			f.State, f.Authenticator = resp.State, inst.Name()
			if err := s.saveFlow(ctx, t.ID, f, true); err != nil {
				return s.fail(c, pg, err)
			}
		}
		if resp.Challenge.Kind == abi.ChallengeRedirect {
			return c.Redirect(resp.Challenge.URL, http.StatusSeeOther)
		}
		if resp.Challenge.Kind == abi.ChallengeWebAuthn {
			return s.renderWebAuthn(c, t, pg, f, csrf, inst.Name(), opts, resp.Challenge)
		}
		return s.renderChallenge(c, t, pg, f, csrf, inst.Name(), opts, resp.Challenge, "")
	case abi.OutcomeNotAuthenticated:
		key := "login.failed"
		switch resp.Reason {
		case abi.ReasonLocked:
			key = "login.locked"
		case abi.ReasonDisabled:
			key = "login.disabled"
		}
		s.publish(c, t.ID, "anonymous", ActionLogin, event.OutcomeFailure, map[string]any{"authenticator": inst.Name(), "reason": resp.Reason, "flow_step": f.Step})
		s.failed(c, t, f) // protect.go: toward the CAPTCHA threshold
		// Show the authenticator's form again, with the error.
		again, err := a.Authenticate(ctx, abi.AuthenticateRequest{Tenant: t.Name, FlowID: f.ID, Step: f.Step, Params: map[string][]string{}, KnownSubject: f.Subject, Config: inst.Config()})
		if again, err = authn.Check(again, err); err != nil || again.Outcome != abi.OutcomeChallenge || again.Challenge.Kind != abi.ChallengeForm {
			return s.RenderError(c, http.StatusUnauthorized, pg, key, "")
		}
		for i, fl := range again.Challenge.Fields {
			if fl.Type == abi.FieldText && len(params[fl.Name]) > 0 {
				again.Challenge.Fields[i].Value = truncate(params[fl.Name][0], 256)
			}
		}
		lang := pickLanguage(pg.UILocales, c.Get(fiber.HeaderAcceptLanguage))
		c.Status(http.StatusUnauthorized)
		return s.renderChallenge(c, t, pg, f, csrf, inst.Name(), opts, again.Challenge, text(lang, key))
	}

	// Authenticated.
	if ident, ok := extension.As[authn.Identifier](inst); ok && ident.IdentifiesOnly() {
		return s.identified(c, t, pg, f, inst, resp)
	}
	if (f.Subject != "" && f.Subject != resp.Subject) || (f.Claimed != "" && f.Claimed != resp.Subject) {
		return s.RenderError(c, http.StatusUnauthorized, pg, "login.failed", "")
	}
	f.Proven = true
	f.Subject = resp.Subject
	if u, _ := resp.Claims["username"].(string); u != "" {
		f.Username = u
	}
	for _, m := range resp.AMR {
		if !slices.Contains(f.AMR, m) {
			f.AMR = append(f.AMR, m)
		}
	}
	userStore, _ := resp.Claims["user_store"].(string)
	f.History = append(f.History, adaptive.Entry{
		Kind: adaptive.EntryStep, Step: f.Step, Success: true, Authenticator: authenticatorID(inst),
		IDP:     optionIDP(s.options(t), inst),
		Subject: stepSubject(resp, f.Username, userStore),
	})
	f.Authenticator, f.State = inst.Name(), nil
	return s.advance(c, t, pg, f, true)
}

// complete ends a login: a session for the flow's subject, and a redirect
// to the flow's return path.
func (s *Service) complete(c *fiber.Ctx, t Tenant, pg Page, f *flow) error {
	if done, err := s.protect(c, t, pg, f); !done || err != nil {
		return err
	}
	return s.finish(c, t, pg, f)
}

// finish starts the session of a login that passed protect.
func (s *Service) finish(c *fiber.Ctx, t Tenant, pg Page, f *flow) error {
	ctx := c.UserContext()
	sess, err := s.startSession(c, t, f)
	if err != nil {
		return s.fail(c, pg, err)
	}
	if err := s.d.Store.DeleteToken(ctx, t.ID, kindFlow, f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.d.Log.WarnContext(ctx, "deleting finished login flow", "err", err)
	}
	s.publish(c, t.ID, event.Ref("user", f.Subject), ActionLogin, event.OutcomeSuccess, map[string]any{"session": sess.ID, "amr": f.AMR, "client_id": f.Client})
	return c.Redirect(s.publicURL+f.ReturnTo, http.StatusSeeOther)
}

// renderPrompt shows the form a script asked for with prompt(): the
// genericForm template's inputs ({id, label}) become text fields.
func (s *Service) renderPrompt(c *fiber.Ctx, t Tenant, pg Page, f *flow, csrf, errText string) error {
	p := s.pageFor(c, pg, "login.title")
	p.Error = errText
	lp := loginPage{page: p, Action: s.basePath + t.Base + PathLogin, Flow: f.ID, CSRF: csrf, Submit: text(p.Lang, "login.submit")}
	if data, ok := f.Prompt.Data.(map[string]any); ok {
		if inputs, ok := data["inputs"].([]any); ok {
			for _, in := range inputs {
				m, _ := in.(map[string]any)
				id, _ := m["id"].(string)
				label, _ := m["label"].(string)
				if id == "" || len(lp.Fields) >= 16 {
					continue
				}
				lp.Fields = append(lp.Fields, field{Name: truncate(id, 64), Type: abi.FieldText, InputType: "text", Label: truncate(orDefault(label, id), 200), Autofocus: len(lp.Fields) == 0})
			}
		}
	}
	if len(lp.Fields) == 0 {
		return s.fail(c, pg, fmt.Errorf("prompt %q has no inputs", f.Prompt.Template))
	}
	return s.render(c, http.StatusOK, "login", lp)
}

// renderChallenge shows a form challenge.
func (s *Service) renderChallenge(c *fiber.Ctx, t Tenant, pg Page, f *flow, csrf, current string, opts []*extension.Instance, ch *abi.Challenge, errText string) error {
	p := s.pageFor(c, pg, "login.title")
	p.Message = ch.Message
	p.Error = errText
	if p.Error == "" {
		p.Error = ch.Error
	}
	lp := loginPage{
		page: p, Action: s.basePath + t.Base + PathLogin, Flow: f.ID, CSRF: csrf,
		Submit: text(p.Lang, "login.submit"), OptionsLabel: text(p.Lang, "login.options"),
	}
	if len(ch.Data) > 0 && len(ch.Data) < 64<<10 {
		var d struct {
			Image    string `json:"image"`
			ImageAlt string `json:"image_alt"`
		}
		// Only a PNG data URL is shown: nothing is loaded from elsewhere.
		if json.Unmarshal(ch.Data, &d) == nil && strings.HasPrefix(d.Image, "data:image/png;base64,") &&
			!strings.ContainsAny(d.Image[len("data:image/png;base64,"):], "\"'<> ") {
			lp.Image, lp.ImageAlt = template.URL(d.Image), truncate(d.ImageAlt, 200) //nolint:gosec // G203: a checked base64 PNG data URL.
		}
	}
	first := true
	for _, fl := range ch.Fields {
		fd := field{Name: fl.Name, Type: fl.Type, InputType: inputType(fl.Type), Label: fl.Label, Value: fl.Value, Required: fl.Required}
		if key := "field." + fl.Name; hasText(key) {
			fd.Label = text(p.Lang, key)
		}
		switch fl.Type {
		case abi.FieldPassword:
			fd.Autocomplete, fd.Value = "current-password", ""
		case abi.FieldOTP:
			fd.Autocomplete = "one-time-code"
		case abi.FieldText:
			if fl.Name == "username" {
				fd.Autocomplete = "username"
				if fd.Value == "" {
					fd.Value = f.LoginHint
				}
			}
		}
		if fl.Type != abi.FieldHidden && first && fd.Value == "" {
			fd.Autofocus, first = true, false
		}
		lp.Fields = append(lp.Fields, fd)
	}
	if lp.Fields != nil && !slices.ContainsFunc(lp.Fields, func(fd field) bool { return fd.Autofocus }) {
		for i := range lp.Fields {
			if lp.Fields[i].Type != abi.FieldHidden && lp.Fields[i].Value == "" {
				lp.Fields[i].Autofocus = true
				break
			}
		}
	}
	if f.Subject == "" && len(opts) > 1 {
		for _, o := range opts {
			if o.Name() != current {
				lp.Options = append(lp.Options, option{
					URL:   s.basePath + t.Base + PathLogin + "?flow=" + url.QueryEscape(f.ID) + "&option=" + url.QueryEscape(o.Name()),
					Label: optionLabel(o),
				})
			}
		}
	}
	status := c.Response().StatusCode()
	if status < 400 {
		status = http.StatusOK
	}
	return s.render(c, status, "login", lp)
}

// optionLabel names an authenticator on the page.
func optionLabel(i *extension.Instance) string {
	if l, ok := extension.As[interface{ ButtonLabel() string }](i); ok && l.ButtonLabel() != "" {
		return l.ButtonLabel() // a federated identity provider's button text
	}
	return i.Name()
}

// inputType maps an abi field type to an HTML input type.
func inputType(t string) string {
	switch t {
	case abi.FieldPassword:
		return "password"
	case abi.FieldHidden:
		return "hidden"
	case abi.FieldEmail:
		return "email"
	case abi.FieldOTP:
		return "text" // one-time codes: digits, but no spinner
	default:
		return "text"
	}
}

// safeHeaders copies the request headers for an authenticator, with
// lowercase names, leaving out cookies and credentials.
func safeHeaders(c *fiber.Ctx) map[string][]string {
	h := map[string][]string{}
	for k, v := range c.GetReqHeaders() {
		lk := strings.ToLower(k)
		if lk == "cookie" || lk == "authorization" || lk == "proxy-authorization" {
			continue
		}
		h[lk] = v
	}
	delete(h, abi.HeaderClientCertificate)
	if chain := clientCertificate(c); chain != "" {
		h[abi.HeaderClientCertificate] = []string{chain}
	}
	return h
}

// fail logs err and shows a generic error page: 503 when a dependency is
// unavailable, 500 otherwise, never the cause.
func (s *Service) fail(c *fiber.Ctx, pg Page, err error) error {
	status := http.StatusInternalServerError
	if fault.CodeOf(err) == fault.CodeUnavailable || fault.CodeOf(err) == fault.CodeTimeout {
		status = http.StatusServiceUnavailable
	}
	s.d.Log.ErrorContext(c.UserContext(), "login failed", "path", c.Path(), "err", err)
	return s.RenderError(c, status, pg, "login.error", "")
}
