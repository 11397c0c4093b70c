package oidc_test

import (
	"context"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/emersion/go-smtp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchid/latch/conformance/internal/live"
)

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// selfServiceServer starts the server with a real SMTP catcher as its mail
// server, and optionally a config file (extensions).
func selfServiceServer(t *testing.T, yaml string) (*op, *mailbox) {
	t.Helper()
	box := &mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	env := []string{"LATCH_MAIL_SMTP_ADDR=" + ln.Addr().String(), "LATCH_MAIL_FROM=Latch <no-reply@example.com>", "LATCH_MAIL_TLS_MODE=none"}
	if yaml != "" {
		cfg := filepath.Join(t.TempDir(), "latch.yaml")
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "LATCH_CONFIG="+cfg)
	}
	return setupWith(t, env...), box
}

// setTenant replaces the default tenant's settings.
func (o *op) setTenant(t *testing.T, settings map[string]any) {
	t.Helper()
	var out map[string]any
	if code := o.Admin(http.MethodPatch, "/tenants/default", map[string]any{"settings": settings}, &out); code != http.StatusOK {
		t.Fatalf("setting the tenant's settings: %d %v", code, out)
	}
}

var mailedLink = regexp.MustCompile(`http://[^\s"<>]+\?token=[A-Za-z0-9_-]+`)

// link returns the link of the newest mail, decoded.
func (m *mailbox) link(t *testing.T) string {
	t.Helper()
	raw := m.last()
	dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(raw)))
	if err != nil {
		dec = []byte(raw)
	}
	l := mailedLink.FindString(string(dec))
	if l == "" {
		t.Fatalf("no link in the mail:\n%s", raw)
	}
	return l
}

func (m *mailbox) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

// rpServer is a relying party's redirect URI: a real listener that shows a
// page with id done and passes the callback's query on.
func rpServer(t *testing.T) (string, chan url.Values) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan url.Values, 4)
	rp := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { //nolint:gosec // test server
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		got <- r.URL.Query()
		_, _ = w.Write([]byte("<!DOCTYPE html><title>RP</title><p id=done>signed in</p>"))
	})}
	go func() { _ = rp.Serve(ln) }()
	t.Cleanup(func() { _ = rp.Close() })
	return "http://" + ln.Addr().String() + "/callback", got
}

// TestBrowserSelfSignup signs up in a real headless Chromium: the sign-up
// form (with a password policy and purposes to consent to), the
// verification mail caught by a real SMTP server, the link that activates
// the account, and a login with the new account through the OAuth front
// door, whose code x/oauth2 exchanges.
func TestBrowserSelfSignup(t *testing.T) {
	ctx := newChrome(t)
	o, box := selfServiceServer(t, "")
	o.setTenant(t, map[string]any{
		"password_policy": map[string]any{"min_length": 12, "require_digit": true},
		"self_service": map[string]any{"signup": true, "purposes": []any{
			map[string]any{"name": "terms", "description": "I accept the terms of use.", "required": true},
			map[string]any{"name": "newsletter", "description": "Send me the newsletter."},
		}},
	})
	redirect, got := rpServer(t)
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "signup-app", "name": "Signup App", "public": true, "first_party": true,
		"token_endpoint_auth_method": "none", "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code"}, "scopes": []string{"openid", "profile"}, "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}

	// A password the policy refuses: the form says why.
	err := chromedp.Do(ctx,
		chromedp.Navigate(o.URL+"/signup"),
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "dora"),
		chromedp.SendKeys(`#f-email`, "dora@example.com"),
		chromedp.SendKeys(`#f-password`, "short"),
		chromedp.SendKeys(`#f-password_confirm`, "short"),
		chromedp.Click(`#p-terms`),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`p.error`),
	)
	if err != nil {
		t.Fatalf("submitting a weak password: %v", err)
	}
	errs, err := chromedp.Run(ctx, chromedp.Text(`main`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errs, "at least 12 characters") || !strings.Contains(errs, "digit") {
		t.Fatalf("policy messages missing: %q", errs)
	}
	const pw = "dora-password-2024"
	err = chromedp.Do(ctx,
		chromedp.SendKeys(`#f-password`, pw),
		chromedp.SendKeys(`#f-password_confirm`, pw),
		chromedp.Click(`#p-terms`),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#message`),
	)
	if err != nil {
		t.Fatalf("signing up: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(`#message`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "email") {
		t.Fatalf("after sign-up: %q", msg)
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if code := o.Admin(http.MethodGet, "/users?username=dora", nil, &list); code != http.StatusOK || len(list.Items) != 1 {
		t.Fatalf("listing dora: %d %v", code, list)
	}
	users := list.Items
	if users[0]["enabled"] != false {
		t.Fatalf("an unverified account is enabled: %v", users[0])
	}
	attrs, _ := users[0]["attributes"].(map[string]any)
	consents, _ := attrs["latch.consents"].([]any)
	if len(consents) != 1 || consents[0].(map[string]any)["purpose"] != "terms" {
		t.Fatalf("consents: %v", attrs)
	}

	// Before verifying, the account cannot sign in.
	verifier := oauth2.GenerateVerifier()
	cfg := &oauth2.Config{
		ClientID: "signup-app", RedirectURL: redirect, Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams},
	}
	b := newBrowser(t)
	p := b.Get(cfg.AuthCodeURL("signup-state-0", oauth2.S256ChallengeOption(verifier)), redirect)
	p = b.Submit(p, map[string]string{"username": "dora", "password": pw}, redirect)
	if strings.HasPrefix(p.Location, redirect) {
		t.Fatal("an unverified account signed in")
	}

	link := box.link(t)
	err = chromedp.Do(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(`#message`),
	)
	if err != nil {
		t.Fatalf("opening the verification link: %v", err)
	}
	if msg, err = chromedp.Run(ctx, chromedp.Text(`#message`)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "verified") {
		t.Fatalf("verification page: %q", msg)
	}
	// Single use.
	if p := b.Get(link, ""); p.Status != http.StatusBadRequest {
		t.Fatalf("a used link answered %d", p.Status)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(cfg.AuthCodeURL("signup-state", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "dora"),
		chromedp.SendKeys(`#f-password`, pw),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#done`),
	)
	if err != nil {
		t.Fatalf("signing in with the new account: %v", err)
	}
	q := <-got
	if q.Get("state") != "signup-state" || q.Get("code") == "" {
		t.Fatalf("callback: %v", q)
	}
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.Extra("id_token") == nil {
		t.Fatalf("exchanging the code: %v", err)
	}
	if code := o.Admin(http.MethodGet, "/users?username=dora", nil, &list); code != http.StatusOK || list.Items[0]["enabled"] != true || list.Items[0]["email_verified"] != true {
		t.Fatalf("after verification: %v", list)
	}
}

// TestPasswordPolicyEnforced checks the tenant's policy on the admin API
// and SCIM: every broken rule is named, and the history refuses reuse.
func TestPasswordPolicyEnforced(t *testing.T) {
	o := setup(t)
	o.setTenant(t, map[string]any{"password_policy": map[string]any{
		"min_length": 12, "require_upper": true, "require_digit": true, "history": 2,
		"pattern": "^[^ ]+$", "pattern_message": "The password must not contain spaces.",
	}})
	var out map[string]any
	code := o.Admin(http.MethodPost, "/users", map[string]any{"username": "erin", "password": "lower case", "enabled": true}, &out)
	b, _ := json.Marshal(out)
	if code != http.StatusBadRequest {
		t.Fatalf("weak password: %d %s", code, b)
	}
	for _, want := range []string{"at least 12", "uppercase", "digit", "spaces", `"password"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("error %s lacks %q", b, want)
		}
	}
	const first, second = "Erin-Password-1", "Erin-Password-2"
	if code := o.Admin(http.MethodPost, "/users", map[string]any{"username": "erin", "password": first, "enabled": true}, &out); code != http.StatusCreated {
		t.Fatalf("creating erin: %d %v", code, out)
	}
	id, _ := out["id"].(string)
	if code := o.Admin(http.MethodPatch, "/users/"+id, map[string]any{"password": first}, &out); code != http.StatusBadRequest || !strings.Contains(fmtJSON(out), "last 2") {
		b, _ := json.Marshal(out)
		t.Fatalf("reusing the current password: %d %s", code, b)
	}
	if code := o.Admin(http.MethodPatch, "/users/"+id, map[string]any{"password": second}, &out); code != http.StatusOK {
		t.Fatalf("a new password: %d %v", code, out)
	}
	if code := o.Admin(http.MethodPatch, "/users/"+id, map[string]any{"password": first}, &out); code != http.StatusBadRequest {
		t.Fatalf("the previous password again: %d %v", code, out)
	}

	// SCIM answers invalidValue naming the rules.
	cc := clientcredentials.Config{ClientID: "latch-admin", ClientSecret: live.AdminSecret, TokenURL: o.URL + "/oauth2/token", Scopes: []string{"latch:admin"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"frank","password":"weakpassword"}`
	req, _ := http.NewRequest(http.MethodPost, o.URL+"/scim2/Users", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(rb), "invalidValue") || !strings.Contains(string(rb), "uppercase") {
		t.Fatalf("SCIM weak password: %d %s", resp.StatusCode, rb)
	}
}

// TestForcedPasswordReset: after an administrator forces a reset, the
// next login asks for a new password (under the policy) before it
// completes, and the one after that does not.
func TestForcedPasswordReset(t *testing.T) {
	o := setup(t)
	o.setTenant(t, map[string]any{"password_policy": map[string]any{"min_length": 12, "history": 3}})
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if code := o.Admin(http.MethodGet, "/users?username=alice", nil, &list); code != http.StatusOK || len(list.Items) != 1 {
		t.Fatalf("finding alice: %d", code)
	}
	id := list.Items[0]["id"].(string)
	if code := o.Admin(http.MethodPost, "/users/"+id+"/force-password-reset", nil, nil); code != http.StatusOK {
		t.Fatalf("forcing a reset: %d", code)
	}
	b := newBrowser(t)
	p := b.Get(o.web().AuthCodeURL("forced-state-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), webRedirect)
	p = loginAt(t, b, p, alicePass, webRedirect)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="new_password"`) {
		t.Fatalf("want the new-password form, got %s\n%s", p, p.Body)
	}
	if r := b.Submit(p, map[string]string{"new_password": "Alice-Changed-01", "confirm_password": "other"}, webRedirect); r.Status != http.StatusBadRequest {
		t.Fatalf("mismatched passwords: %s", r)
	}
	r := b.Submit(p, map[string]string{"new_password": alicePass, "confirm_password": alicePass}, webRedirect)
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "differ from the last 3") {
		t.Fatalf("the old password again: %s\n%s", r, r.Body)
	}
	r = b.Submit(r, map[string]string{"new_password": "Alice-Changed-01", "confirm_password": "Alice-Changed-01"}, webRedirect)
	if q := r.Query(t, webRedirect); q.Get("code") == "" {
		t.Fatalf("no code after the change: %v", q)
	}
	b2 := newBrowser(t)
	p = b2.Get(o.web().AuthCodeURL("forced-state-2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), webRedirect)
	p = loginAt(t, b2, p, "Alice-Changed-01", webRedirect)
	if q := p.Query(t, webRedirect); q.Get("code") == "" {
		t.Fatalf("second login: %v", q)
	}
}

// TestPasswordRecovery: the recovery page answers the same for known and
// unknown accounts, mails a single-use link for a known one, the new
// password meets the policy, and the account's sessions end.
func TestPasswordRecovery(t *testing.T) {
	o, box := selfServiceServer(t, "")
	o.setTenant(t, map[string]any{
		"password_policy": map[string]any{"min_length": 12},
		"self_service":    map[string]any{"recovery": true},
	})
	// A session of alice's, to be ended by the recovery.
	old := newBrowser(t)
	p := old.Get(o.web().AuthCodeURL("recovery-state-0", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), webRedirect)
	_ = loginAt(t, old, p, alicePass, webRedirect).Query(t, webRedirect)

	b := newBrowser(t)
	ask := func(id string) page {
		p := b.Get(o.URL+"/recover", "")
		if p.Status != http.StatusOK {
			t.Fatalf("recover page: %s", p)
		}
		return b.Submit(p, map[string]string{"identifier": id}, "")
	}
	unknown := ask("nobody@example.com")
	if box.count() != 0 {
		t.Fatal("a mail went out for an unknown account")
	}
	known := ask("alice@example.com")
	if unknown.Status != known.Status || unknown.Body != known.Body {
		t.Fatalf("the answers differ:\n%s\n---\n%s", unknown.Body, known.Body)
	}
	link := box.link(t)
	p = b.Get(link, "")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="password_confirm"`) {
		t.Fatalf("reset page: %s\n%s", p, p.Body)
	}
	if r := b.Submit(p, map[string]string{"password": "short", "password_confirm": "short"}, ""); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "at least 12") {
		t.Fatalf("weak new password: %s\n%s", r, r.Body)
	}
	const fresh = "Alice-Recovered-9"
	if r := b.Submit(p, map[string]string{"password": fresh, "password_confirm": fresh}, ""); r.Status != http.StatusOK || !strings.Contains(r.Body, "password is changed") {
		t.Fatalf("setting the new password: %s\n%s", r, r.Body)
	}
	if r := b.Get(link, ""); r.Status != http.StatusBadRequest {
		t.Fatalf("a used link answered %s", r)
	}
	// The old session is gone: the login page shows again.
	p = old.Get(o.web().AuthCodeURL("recovery-state-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), webRedirect)
	if strings.HasPrefix(p.Location, webRedirect) {
		t.Fatal("the session survived the recovery")
	}
	if q := loginAt(t, old, p, fresh, webRedirect).Query(t, webRedirect); q.Get("code") == "" {
		t.Fatal("no login with the new password")
	}
}

// TestLoginThrottlePerIP: past the tenant's login_throttle, the login form
// answers 429 with Retry-After before it checks any password, even a right
// one; and a flow that only names the user ends on a 4xx page.
func TestLoginThrottlePerIP(t *testing.T) {
	o, _ := selfServiceServer(t, `extensions:
  instances:
    - {name: authn.password, module: authn.password}
    - {name: userstore.local, module: userstore.local}
    - {name: ip-limit, module: throttle.local}
    - {name: authn.identifier, module: authn.identifier}
`)
	o.setTenant(t, map[string]any{"login_throttle": map[string]any{"throttler": "ip-limit", "max_attempts": 3, "window_seconds": 600}})
	b := newBrowser(t)
	p := b.Get(o.web().AuthCodeURL("throttle-state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), webRedirect)
	for i := range 3 {
		r := b.Submit(p, map[string]string{"username": "alice", "password": "wrong"}, webRedirect)
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %s", i+1, r)
		}
	}
	action, fields := parseForm(t, p.Body)
	fields.Set("username", "alice")
	fields.Set("password", alicePass)
	target, _ := url.Parse(p.URL)
	target, _ = target.Parse(action)
	post, _ := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.Client.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "Too many sign-in attempts") {
		t.Fatalf("over the limit: %d %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	// An identifier-only flow: a clear refusal, not a server error.
	const redirect = "http://127.0.0.1:9/idonly/callback"
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "idonly", "public": true, "first_party": true, "token_endpoint_auth_method": "none", "enabled": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"},
		"settings": map[string]any{"authentication": map[string]any{"steps": []any{map[string]any{"options": []string{"identifier"}}}}},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	o.setTenant(t, map[string]any{})
	c := &oauth2.Config{ClientID: "idonly", RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	b2 := newBrowser(t)
	p = b2.Get(c.AuthCodeURL("idonly-state-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), redirect)
	r := b2.Submit(p, map[string]string{"username": "alice"}, redirect)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "no step confirmed who you are") {
		t.Fatalf("identifier-only flow: %s\n%s", r, r.Body)
	}
}

// TestSecurityQuestionRecovery: a signed-in user sets answers (stored
// hashed); recovery asks for some of them, accepts answers that differ in
// case and spacing, leads to the reset page, and bounds wrong attempts; an
// unknown account gets a form of the same shape.
func TestSecurityQuestionRecovery(t *testing.T) {
	o := setup(t)
	o.setTenant(t, map[string]any{"self_service": map[string]any{
		"recovery": true, "questions_asked": 2,
		"questions": []string{"First pet's name?", "City of birth?", "Favourite teacher?"},
	}})
	answers := map[string]string{"q0": "Dinah", "q1": "Oxford", "q2": "Mr. Dodgson"}
	b := newBrowser(t)
	p := b.Get(o.web().AuthCodeURL("questions-state-0", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), webRedirect)
	_ = loginAt(t, b, p, alicePass, webRedirect).Query(t, webRedirect)
	p = b.Get(o.URL+"/account/security-questions", "")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "City of birth?") {
		t.Fatalf("answers page: %s\n%s", p, p.Body)
	}
	if r := b.Submit(p, map[string]string{"q0": "Dinah"}, ""); r.Status != http.StatusBadRequest {
		t.Fatalf("one answer of two: %s", r)
	}
	if r := b.Submit(p, answers, ""); r.Status != http.StatusOK || !strings.Contains(r.Body, "saved") {
		t.Fatalf("saving answers: %s\n%s", r, r.Body)
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	o.Admin(http.MethodGet, "/users?username=alice", nil, &list)
	if s := fmtJSON(list.Items); strings.Contains(s, "Oxford") || strings.Contains(s, "$argon2id") {
		t.Fatalf("answers or their hashes are shown: %s", s)
	}

	start := func(b *browser, name string) page {
		p := b.Get(o.URL+"/recover/questions", "")
		return b.Submit(p, map[string]string{"identifier": name}, "")
	}
	fill := func(p page, wrong bool) map[string]string {
		fields := regexp.MustCompile(`name="(q\d)"`).FindAllStringSubmatch(p.Body, -1)
		out := map[string]string{}
		n := 0
		for _, m := range fields {
			if a, ok := answers[m[1]]; ok {
				k := m[1]
				n++
				if wrong {
					a = "nope"
				}
				out[k] = "  " + strings.ToUpper(a) + " "
			}
		}
		if n != 2 {
			t.Fatalf("want 2 questions, got %v\n%s", fields, p.Body)
		}
		return out
	}
	// Unknown account: the same form, never accepted, attempts bounded.
	rb := newBrowser(t)
	ghost := start(rb, "nobody")
	if ghost.Status != http.StatusOK {
		t.Fatalf("unknown account: %s", ghost)
	}
	for i := range 3 {
		ghost = rb.Submit(ghost, fill(ghost, false), "")
		if i < 2 && ghost.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d for an unknown account: %s", i+1, ghost)
		}
	}
	if ghost.Status != http.StatusForbidden {
		t.Fatalf("after 3 attempts: %s", ghost)
	}

	p = start(rb, "alice")
	wrong := rb.Submit(p, fill(p, true), "")
	if wrong.Status != http.StatusUnauthorized {
		t.Fatalf("wrong answers: %s", wrong)
	}
	r := rb.Submit(wrong, fill(wrong, false), "")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, `name="password_confirm"`) {
		t.Fatalf("right answers: %s\n%s", r, r.Body)
	}
	const fresh = "Alice-By-Questions-3"
	if d := rb.Submit(r, map[string]string{"password": fresh, "password_confirm": fresh}, ""); d.Status != http.StatusOK {
		t.Fatalf("setting the password: %s\n%s", d, d.Body)
	}
	nb := newBrowser(t)
	p = nb.Get(o.web().AuthCodeURL("questions-state-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), webRedirect)
	if q := loginAt(t, nb, p, fresh, webRedirect).Query(t, webRedirect); q.Get("code") == "" {
		t.Fatal("no login with the new password")
	}
}

// TestCaptchaOnSignupAndRecovery: with a CAPTCHA configured (a local
// siteverify server that knows one good token), the sign-up and recovery
// pages show the widget and refuse a form whose token the provider does
// not confirm; the provider receives the secret, the token and the IP.
func TestCaptchaOnSignupAndRecovery(t *testing.T) {
	var mu sync.Mutex
	var seen []url.Values
	verify := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		seen = append(seen, r.PostForm)
		mu.Unlock()
		ok := r.PostForm.Get("secret") == "captcha-secret" && r.PostForm.Get("response") == "solved-token"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]bool{"success": ok})
	}))
	t.Cleanup(verify.Close)
	box := &mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	o := setupWith(t, "LATCH_MAIL_SMTP_ADDR="+ln.Addr().String(), "LATCH_MAIL_FROM=no-reply@example.com", "LATCH_MAIL_TLS_MODE=none",
		"LATCH_CAPTCHA_VERIFY_URL="+verify.URL+"/siteverify", "LATCH_CAPTCHA_SECRET=captcha-secret", "LATCH_CAPTCHA_INSECURE=true",
		"LATCH_CAPTCHA_SITE_KEY=site-key-1", "LATCH_CAPTCHA_SCRIPT_URL=https://captcha.example.net/widget.js")
	o.setTenant(t, map[string]any{"self_service": map[string]any{"signup": true, "recovery": true, "captcha": map[string]any{"signup": true, "recovery": true}}})

	b := newBrowser(t)
	p := b.Get(o.URL+"/signup", "")
	if !strings.Contains(p.Body, `data-sitekey="site-key-1"`) || !strings.Contains(p.Body, "https://captcha.example.net/widget.js") {
		t.Fatalf("no widget on the sign-up page:\n%s", p.Body)
	}
	form := map[string]string{"username": "gina", "email": "gina@example.com", "password": "gina-password-1", "password_confirm": "gina-password-1", "captcha_response": "guessed"}
	if r := b.Submit(p, form, ""); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "security check") {
		t.Fatalf("a wrong token: %s %q %q", r, r.URL, r.Body)
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if o.Admin(http.MethodGet, "/users?username=gina", nil, &list); len(list.Items) != 0 {
		t.Fatal("an account was created without a solved CAPTCHA")
	}
	form["captcha_response"] = "solved-token"
	if r := b.Submit(p, form, ""); r.Status != http.StatusOK {
		t.Fatalf("a solved token: %s\n%s", r, r.Body)
	}
	if o.Admin(http.MethodGet, "/users?username=gina", nil, &list); len(list.Items) != 1 {
		t.Fatal("no account after a solved CAPTCHA")
	}

	p = b.Get(o.URL+"/recover", "")
	before := box.count()
	if r := b.Submit(p, map[string]string{"identifier": "alice", "captcha_response": ""}, ""); r.Status != http.StatusBadRequest {
		t.Fatalf("recovery without a token: %s", r)
	}
	if box.count() != before {
		t.Fatal("a recovery mail went out without a solved CAPTCHA")
	}
	if r := b.Submit(p, map[string]string{"identifier": "alice", "captcha_response": "solved-token"}, ""); r.Status != http.StatusOK || box.count() != before+1 {
		t.Fatalf("recovery with a token: %s, %d mails", r, box.count()-before)
	}
	mu.Lock()
	if len(seen) == 0 || seen[len(seen)-1].Get("remoteip") == "" {
		t.Fatalf("the provider was not told the IP: %v", seen)
	}
	mu.Unlock()

	// Login: after 2 failed passwords from the address, the next form
	// goes to the CAPTCHA before any password is checked.
	o.setTenant(t, map[string]any{"login_throttle": map[string]any{"throttler": "throttle.local", "max_attempts": 100, "captcha_after": 2}})
	lb := newBrowser(t)
	p = lb.Get(o.web().AuthCodeURL("captcha-login-state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), webRedirect)
	for i := range 2 {
		if r := lb.Submit(p, map[string]string{"username": "alice", "password": "wrong"}, webRedirect); r.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %s", i+1, r)
		}
	}
	r := lb.Submit(p, map[string]string{"username": "alice", "password": alicePass}, webRedirect)
	if r.Status != http.StatusOK || !strings.Contains(r.URL, "/login/captcha") || !strings.Contains(r.Body, `data-sitekey="site-key-1"`) {
		t.Fatalf("want the CAPTCHA page, got %s %s\n%s", r, r.URL, r.Body)
	}
	if bad := lb.Submit(r, map[string]string{"captcha_response": "guessed"}, webRedirect); bad.Status != http.StatusBadRequest {
		t.Fatalf("a wrong token: %s", bad)
	}
	p = lb.Submit(r, map[string]string{"captcha_response": "solved-token"}, webRedirect)
	if q := loginAt(t, lb, p, alicePass, webRedirect).Query(t, webRedirect); q.Get("code") == "" {
		t.Fatalf("no code after the CAPTCHA: %v", q)
	}
}

// TestStepUpOnACR: signed in with a password (acr 1), an authorization
// request asking acr_values=2 runs only the flow's second step (TOTP,
// enrolled on first use) for the session's user, without asking for the
// password again, and the ID token then carries acr 2 and both methods.
func TestStepUpOnACR(t *testing.T) {
	o := setup(t)
	const redirect = "http://127.0.0.1:9/stepup/callback"
	for id, steps := range map[string][]any{
		"basic-app":  {map[string]any{"options": []string{"password"}}},
		"stepup-app": {map[string]any{"options": []string{"password"}}, map[string]any{"options": []string{"totp"}}},
	} {
		if code := o.Admin(http.MethodPost, "/clients", map[string]any{
			"client_id": id, "public": true, "first_party": true, "token_endpoint_auth_method": "none", "enabled": true,
			"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"},
			"settings": map[string]any{"authentication": map[string]any{"steps": steps}},
		}, nil); code != http.StatusCreated {
			t.Fatalf("creating %s: %d", id, code)
		}
	}
	cfg := func(id string) *oauth2.Config {
		return &oauth2.Config{ClientID: id, RedirectURL: redirect, Scopes: []string{"openid"},
			Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	}
	claims := func(c *oauth2.Config, p page, v string) (amr []string, acr string) {
		t.Helper()
		tok, err := c.Exchange(context.Background(), p.Query(t, redirect).Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := o.provider.Verifier(&oidc.Config{ClientID: c.ClientID}).Verify(context.Background(), tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var cl struct {
			AMR []string `json:"amr"`
			ACR string   `json:"acr"`
		}
		if err := idt.Claims(&cl); err != nil {
			t.Fatal(err)
		}
		return cl.AMR, cl.ACR
	}
	b := newBrowser(t)
	v := oauth2.GenerateVerifier()
	p := b.Get(cfg("basic-app").AuthCodeURL("stepup-state-1", oauth2.S256ChallengeOption(v)), redirect)
	p = loginAt(t, b, p, alicePass, redirect)
	if amr, acr := claims(cfg("basic-app"), p, v); acr != "1" || strings.Join(amr, " ") != "pwd" {
		t.Fatalf("password login: amr %v acr %q", amr, acr)
	}
	// Without acr_values the session is enough, even for the two-step app.
	v = oauth2.GenerateVerifier()
	if p := b.Get(cfg("stepup-app").AuthCodeURL("stepup-state-2", oauth2.S256ChallengeOption(v)), redirect); p.Query(t, redirect).Get("code") == "" {
		t.Fatal("SSO without acr_values")
	}
	v = oauth2.GenerateVerifier()
	p = b.Get(cfg("stepup-app").AuthCodeURL("stepup-state-3", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("acr_values", "2")), redirect)
	m := keyPattern.FindStringSubmatch(p.Body)
	if p.Status != http.StatusOK || m == nil || strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("want the TOTP step alone, got %s\n%s", p, p.Body)
	}
	code, err := totp.GenerateCodeCustom(m[1], time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	p = b.Submit(p, map[string]string{"code": code}, redirect)
	amr, acr := claims(cfg("stepup-app"), p, v)
	if acr != "2" || !containsAll(amr, "pwd", "otp") {
		t.Fatalf("after the step-up: amr %v acr %q", amr, acr)
	}
	// The stepped-up session now satisfies acr 2 without another step.
	v = oauth2.GenerateVerifier()
	if p := b.Get(cfg("stepup-app").AuthCodeURL("stepup-state-4", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("acr_values", "2")), redirect); p.Query(t, redirect).Get("code") == "" {
		t.Fatal("a second acr 2 request asked again")
	}
}
