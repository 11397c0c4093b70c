package oidc_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"
)

// chromium returns the path of a Chromium binary, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH; .ci/run installs the chromium package")
	}
	t.Skip("no chromium on PATH: install the chromium package (Debian) to run the browser tests")
	return ""
}

// newChrome starts a headless Chromium for the test.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// TestBrowserLogin signs in through the login page in a real headless
// Chromium: the relying party's callback receives a code that x/oauth2
// exchanges, and a second authorization in the same browser needs no
// login (the SSO session cookie).
func TestBrowserLogin(t *testing.T) {
	ctx := newChrome(t)
	o := setup(t)

	// The relying party's redirect URI: a real listener that records
	// what arrives.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan url.Values, 4)
	rp := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r) // the browser also asks for /favicon.ico
			return
		}
		got <- r.URL.Query()
		_, _ = w.Write([]byte("<!DOCTYPE html><title>RP</title><p id=done>signed in</p>"))
	})}
	go func() { _ = rp.Serve(ln) }()
	t.Cleanup(func() { _ = rp.Close() })
	redirect := "http://" + ln.Addr().String() + "/callback"
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "browser-app", "name": "Browser App", "public": true, "first_party": true,
		"token_endpoint_auth_method": "none", "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code"}, "scopes": []string{"openid", "profile"}, "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	cfg := &oauth2.Config{
		ClientID: "browser-app", RedirectURL: redirect, Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams},
	}
	verifier := oauth2.GenerateVerifier()

	err = chromedp.Do(ctx,
		chromedp.Navigate(cfg.AuthCodeURL("browser-state-1", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(`#f-username`),
	)
	if err != nil {
		t.Fatalf("opening the login page in Chromium: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	lang, err := chromedp.Run(ctx, chromedp.AttributeValue(`html`, "lang"))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#done`),
	)
	if err != nil {
		t.Fatalf("signing in with Chromium: %v", err)
	}
	if !strings.HasPrefix(title, "Sign in") || lang.Value != "en" {
		t.Errorf("login page title %q, lang %q", title, lang.Value)
	}
	q := <-got
	if q.Get("state") != "browser-state-1" || q.Get("code") == "" {
		t.Fatalf("callback: %v", q)
	}
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchanging the browser's code: %v", err)
	}
	if tok.Extra("id_token") == nil {
		t.Error("no ID token")
	}

	// Same browser, second authorization: no login page.
	err = chromedp.Do(ctx,
		chromedp.Navigate(cfg.AuthCodeURL("browser-state-2", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(`#done`),
	)
	if err != nil {
		t.Fatalf("second authorization: %v", err)
	}
	if q := <-got; q.Get("state") != "browser-state-2" || q.Get("code") == "" {
		t.Fatalf("second callback: %v", q)
	}
}

// adminOrUnknownIPScript asks for TOTP from admins and from anyone outside
// the office network (10.0.0.0/8), in the shape of WSO2's role- and
// IP-based templates (written for Latch).
const adminOrUnknownIPScript = `
var officeNetwork = '10.';
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.currentKnownSubject;
            var fromOffice = context.request.ip.indexOf(officeNetwork) === 0;
            if (hasAnyOfTheRoles(user, ['admin']) || !fromOffice) {
                executeStep(2);
            }
        }
    });
};
`

// TestBrowserTOTP enrols and uses TOTP in a real headless Chromium: an
// application whose script asks for a second factor from unknown networks
// (loopback is not the office), so the login shows the enrolment QR code,
// the test reads the key from the page and types the current code.
func TestBrowserTOTP(t *testing.T) {
	ctx := newChrome(t)
	o := setup(t)
	redirect, got := callbackRP(t)
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "mfa-browser", "name": "MFA App", "public": true, "first_party": true,
		"token_endpoint_auth_method": "none", "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code"}, "scopes": []string{"openid"}, "enabled": true,
		"settings": map[string]any{"authentication": map[string]any{
			"steps":  []any{map[string]any{"options": []string{"password"}}, map[string]any{"options": []string{"totp"}}},
			"script": adminOrUnknownIPScript,
		}},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	cfg := &oauth2.Config{
		ClientID: "mfa-browser", RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams},
	}
	verifier := oauth2.GenerateVerifier()
	err := chromedp.Do(ctx,
		chromedp.Navigate(cfg.AuthCodeURL("totp-state-1", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#f-code`),
		chromedp.WaitVisible(`img[alt]`),
	)
	if err != nil {
		t.Fatalf("password step in Chromium: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(`.message`))
	if err != nil {
		t.Fatal(err)
	}
	m := keyPattern.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no TOTP key on the enrolment page: %q", msg)
	}
	code, err := totp.GenerateCodeCustom(m[1], time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(`#f-code`, code),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#done`),
	)
	if err != nil {
		t.Fatalf("TOTP step in Chromium: %v", err)
	}
	q := <-got
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idt, err := o.provider.Verifier(&oidc.Config{ClientID: "mfa-browser"}).Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil || !containsAll(claims.AMR, "pwd", "otp") {
		t.Fatalf("amr %v, %v", claims.AMR, err)
	}
}
