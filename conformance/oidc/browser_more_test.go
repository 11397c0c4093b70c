package oidc_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/emersion/go-smtp"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

// The login page's sentences the browser tests read (English, Chromium's
// default language).
const (
	msgWrongPassword = "The username or password is not correct."
	msgLocked        = "This account is locked. Try again later or contact your administrator."
	msgWrongCode     = "That code is not valid."
)

// catchMail starts a real SMTP server (go-smtp) on a loopback port and
// returns its mailbox and address.
func catchMail(t *testing.T) (*mailbox, string) {
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
	return box, ln.Addr().String()
}

// writeConfig writes latch.yaml into a temporary folder and returns the
// LATCH_CONFIG setting that points at it.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return "LATCH_CONFIG=" + path
}

// publicClient registers a public first-party client using PKCE whose
// authentication is settings (nil for the tenant's default flow), and
// returns its x/oauth2 configuration.
func publicClient(t *testing.T, o *op, id, redirect string, settings map[string]any) *oauth2.Config {
	t.Helper()
	body := map[string]any{
		"client_id": id, "name": id, "public": true, "first_party": true,
		"token_endpoint_auth_method": "none", "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code"}, "scopes": []string{"openid"}, "enabled": true,
	}
	if settings != nil {
		body["settings"] = settings
	}
	if code := o.Admin(http.MethodPost, "/clients", body, nil); code != http.StatusCreated {
		t.Fatalf("creating client %s: %d", id, code)
	}
	return &oauth2.Config{
		ClientID: id, RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: o.provider.Endpoint().AuthURL, TokenURL: o.provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
}

// submit clicks the page's submit button and waits for the answer to load
// in Chromium, returning its HTTP status.
func submit(ctx context.Context, t *testing.T, what string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(`button[type=submit]`))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return resp.Status
}

// typeInto replaces the value of the input sel by typing text, key by key.
func typeInto(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Clear(sel), chromedp.SendKeys(sel, text))
}

// pageError returns the login page's error sentence (role=alert), or ""
// when the page shows none.
func pageError(ctx context.Context, t *testing.T) string {
	t.Helper()
	msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("form-error") || {textContent: ""}).textContent.trim()`))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// noCallback fails the test when the relying party was called back.
func noCallback(t *testing.T, got <-chan url.Values, when string) {
	t.Helper()
	select {
	case q := <-got:
		t.Fatalf("%s: the relying party was called back: %v", when, q)
	default:
	}
}

// callback waits for the relying party's callback and checks its state.
func callback(t *testing.T, got <-chan url.Values, state string) string {
	t.Helper()
	select {
	case q := <-got:
		if q.Get("state") != state || q.Get("code") == "" {
			t.Fatalf("callback: %v", q)
		}
		return q.Get("code")
	case <-time.After(10 * time.Second):
		t.Fatal("no callback at the relying party")
	}
	return ""
}

// verifiedIDToken exchanges code with the PKCE verifier through x/oauth2
// and verifies the ID token with go-oidc, checking the nonce.
func verifiedIDToken(t *testing.T, o *op, cfg *oauth2.Config, code, verifier, nonce string) (*oidc.IDToken, []string) {
	t.Helper()
	tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchanging the browser's code: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := o.provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verifying the ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return idt, claims.AMR
}

// TestBrowserEmailOTP signs in through the login pages in a real headless
// Chromium with a password and then a code emailed through a real SMTP
// server: the test reads the code from the caught email and types it;
// a wrong code first shows an error and does not finish the login. The
// relying party's code is exchanged with PKCE (x/oauth2), and the ID
// token (verified with go-oidc) names alice with amr otp.
func TestBrowserEmailOTP(t *testing.T) {
	ctx := newChrome(t)
	box, smtpAddr := catchMail(t)
	o := setupWith(t, writeConfig(t, `extensions:
  instances:
    - {name: authn.password, module: authn.password}
    - {name: userstore.local, module: userstore.local}
    - name: authn.email_otp
      module: authn.email_otp
      config: {smtp_addr: "`+smtpAddr+`", from: "Latch <no-reply@example.com>", tls: none}
`))
	redirect, got := callbackRP(t)
	cfg := publicClient(t, o, "otp-browser", redirect, map[string]any{"authentication": map[string]any{"steps": []any{
		map[string]any{"options": []string{"password"}}, map[string]any{"options": []string{"email-otp-authenticator"}},
	}}})
	verifier, nonce := oauth2.GenerateVerifier(), "nonce-email-otp"

	// Step 1: the password.
	err := chromedp.Do(ctx,
		chromedp.Navigate(cfg.AuthCodeURL("otp-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))),
		chromedp.WaitVisible(`#f-username`),
		typeInto(`#f-username`, "alice"),
		typeInto(`#f-password`, alicePass),
	)
	if err != nil {
		t.Fatalf("opening the login page in Chromium: %v", err)
	}
	if status := submit(ctx, t, "password step"); status != http.StatusOK {
		t.Fatalf("password step: HTTP %d", status)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`#f-code`)); err != nil {
		t.Fatalf("no code field after the password: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(`.message`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "a***@example.com") {
		t.Errorf("code page message %q does not name the masked address", msg)
	}
	noCallback(t, got, "after the password alone")

	// The email, through the SMTP server.
	var code string
	live.Eventually(t, 10*time.Second, "the emailed code", func() bool {
		if m := mailedCode.FindStringSubmatch(box.last()); m != nil {
			code = m[1]
		}
		return code != ""
	})
	if !strings.Contains(box.last(), "alice@example.com") {
		t.Errorf("the email is not addressed to alice:\n%s", box.last())
	}

	// Step 2, first with a wrong code: an error, the same step again.
	wrong := []byte(code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	if err := chromedp.Do(ctx, typeInto(`#f-code`, string(wrong))); err != nil {
		t.Fatal(err)
	}
	submit(ctx, t, "wrong code")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`#f-code`)); err != nil {
		t.Fatalf("no code field after a wrong code: %v", err)
	}
	if e := pageError(ctx, t); e != msgWrongCode {
		t.Fatalf("wrong code: page error %q, want %q", e, msgWrongCode)
	}
	noCallback(t, got, "after a wrong code")

	// Then the emailed code.
	if err := chromedp.Do(ctx, typeInto(`#f-code`, code)); err != nil {
		t.Fatal(err)
	}
	if status := submit(ctx, t, "emailed code"); status != http.StatusOK {
		t.Fatalf("emailed code: HTTP %d, page error %q", status, pageError(ctx, t))
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`#done`)); err != nil {
		t.Fatalf("emailed code: not back at the relying party: %v", err)
	}
	idt, amr := verifiedIDToken(t, o, cfg, callback(t, got, "otp-state"), verifier, nonce)
	if want := userID(t, o.Server, "alice"); idt.Subject != want {
		t.Errorf("sub %q, want alice (%s)", idt.Subject, want)
	}
	if !containsAll(amr, "pwd", "otp") {
		t.Errorf("amr %v, want pwd and otp", amr)
	}
}

// TestBrowserAccountLockout types wrong passwords in a real headless
// Chromium until userstore.local (max_failed_logins: 3) locks the account:
// the page then says the account is locked, with the same sentence for
// a wrong and for the right password, and no code reaches the relying
// party. An administrator unlocks the account through the admin API,
// and the right password then signs in (code exchanged with PKCE through
// x/oauth2, ID token verified with go-oidc).
func TestBrowserAccountLockout(t *testing.T) {
	const (
		maxFailed = 3
		carolPass = "carol-password-42"
	)
	ctx := newChrome(t)
	o := setupWith(t, writeConfig(t, `extensions:
  instances:
    - {name: authn.password, module: authn.password}
    - {name: userstore.local, module: userstore.local, config: {max_failed_logins: 3, lockout_seconds: 900}}
`))
	var carol struct {
		ID string `json:"id"`
	}
	if code := o.Admin(http.MethodPost, "/users", map[string]any{"username": "carol", "password": carolPass, "email": "carol@example.com", "enabled": true}, &carol); code != http.StatusCreated || carol.ID == "" {
		t.Fatalf("creating carol: %d %+v", code, carol)
	}
	redirect, got := callbackRP(t)
	cfg := publicClient(t, o, "lockout-browser", redirect, nil)
	verifier, nonce := oauth2.GenerateVerifier(), "nonce-lockout"

	if err := chromedp.Do(ctx,
		chromedp.Navigate(cfg.AuthCodeURL("lockout-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))),
		chromedp.WaitVisible(`#f-username`),
	); err != nil {
		t.Fatalf("opening the login page in Chromium: %v", err)
	}
	try := func(pass, what string) string {
		t.Helper()
		if err := chromedp.Do(ctx, typeInto(`#f-username`, "carol"), typeInto(`#f-password`, pass)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if status := submit(ctx, t, what); status != http.StatusUnauthorized {
			t.Fatalf("%s: HTTP %d, want 401", what, status)
		}
		if err := chromedp.Do(ctx, chromedp.WaitVisible(`#f-password`)); err != nil {
			t.Fatalf("%s: no login form: %v", what, err)
		}
		noCallback(t, got, what)
		return pageError(ctx, t)
	}

	// max_failed_logins wrong passwords: each one says only that the
	// credentials are wrong.
	for i := range maxFailed {
		if e := try("wrong-guess-"+itoa(i), "wrong password "+itoa(i+1)); e != msgWrongPassword {
			t.Fatalf("wrong password %d: page error %q, want %q", i+1, e, msgWrongPassword)
		}
	}
	var locked struct {
		LockedUntil *time.Time `json:"locked_until"`
	}
	if code := o.Admin(http.MethodGet, "/users/"+carol.ID, nil, &locked); code != http.StatusOK || locked.LockedUntil == nil || !locked.LockedUntil.After(time.Now().Add(10*time.Minute)) {
		t.Fatalf("after %d wrong passwords: %d, locked_until %v, want about 15 minutes ahead", maxFailed, code, locked.LockedUntil)
	}

	// Locked: a wrong and the right password get the same sentence.
	if e := try("wrong-guess-again", "wrong password while locked"); e != msgLocked {
		t.Fatalf("wrong password while locked: page error %q, want %q", e, msgLocked)
	}
	if e := try(carolPass, "right password while locked"); e != msgLocked {
		t.Fatalf("right password while locked: page error %q, want %q", e, msgLocked)
	}

	// An administrator unlocks the account.
	if code := o.Admin(http.MethodPatch, "/users/"+carol.ID, map[string]any{"locked_until": "1970-01-01T00:00:00Z"}, nil); code != http.StatusOK {
		t.Fatalf("unlocking: %d", code)
	}
	if err := chromedp.Do(ctx, typeInto(`#f-username`, "carol"), typeInto(`#f-password`, carolPass)); err != nil {
		t.Fatal(err)
	}
	if status := submit(ctx, t, "right password after the unlock"); status != http.StatusOK {
		t.Fatalf("right password after the unlock: HTTP %d, page error %q", status, pageError(ctx, t))
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`#done`)); err != nil {
		t.Fatalf("after the unlock: not back at the relying party: %v", err)
	}
	idt, amr := verifiedIDToken(t, o, cfg, callback(t, got, "lockout-state"), verifier, nonce)
	if idt.Subject != carol.ID {
		t.Errorf("sub %q, want carol (%s)", idt.Subject, carol.ID)
	}
	if !slices.Contains(amr, "pwd") {
		t.Errorf("amr %v, want pwd", amr)
	}
}
