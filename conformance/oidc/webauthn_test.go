package oidc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

// webauthnServer starts a server whose public URL is http://localhost:port
// (WebAuthn refuses an IP address as relying party id, and Chromium treats
// localhost as a secure context) with the password, local user store and
// WebAuthn authenticators (and identifier-first, whose users of
// example.org go to passkeys), and creates alice.
func webauthnServer(t *testing.T) *live.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cfg := filepath.Join(t.TempDir(), "latch.yaml")
	yaml := `extensions:
  instances:
    - {name: authn.password, module: authn.password}
    - {name: userstore.local, module: userstore.local}
    - name: authn.webauthn
      module: authn.webauthn
      config: {rp_name: "Latch conformance", user_verification: required, resident_key: required}
    - name: authn.identifier
      module: authn.identifier
      config: {domains: {"example.org": authn.webauthn}}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := live.StartWith(t, live.Options{
		Listen: "127.0.0.1:" + itoa(port),
		Env:    []string{"LATCH_CONFIG=" + cfg, "LATCH_PUBLIC_URL=http://localhost:" + itoa(port)},
	})
	if code := s.Admin(http.MethodPost, "/users", map[string]any{
		"username": "alice", "password": alicePass, "email": "alice@example.com", "email_verified": true,
		"display_name": "Alice Liddell", "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating alice: %d", code)
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

// b64url encodes a credential id the way Latch names credentials:
// base64url without padding.
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// callbackRP is a relying party's redirect URI: a real listener that
// records the query of every callback.
func callbackRP(t *testing.T) (string, <-chan url.Values) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan url.Values, 8)
	rp := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

// idTokenClaims decodes the payload of the token response's ID token (the
// signature is checked by the other suites; here the claims matter).
func idTokenClaims(t *testing.T, tok *oauth2.Token) map[string]any {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("no ID token in %v", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func amrOf(claims map[string]any) []string {
	var out []string
	list, _ := claims["amr"].([]any)
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestBrowserWebAuthn registers a passkey and signs in with it in a real
// headless Chromium whose WebAuthn calls go to a virtual CTAP2 platform
// authenticator (DevTools WebAuthn domain) with resident keys and user
// verification:
//
//  1. an application asking for a password and then a passkey enrols one
//     on the first login (the user has none);
//  2. an application offering a passkey or a password in one step signs
//     alice in with the passkey alone (a discoverable credential: no
//     username typed);
//  3. the first application's second step now asks for the registered
//     passkey (a second factor);
//  4. an identifier-first application, told "alice", goes straight to
//     her passkey.
//
// Every login ends with a code that x/oauth2 exchanges for tokens; the
// admin API lists the registered credential and revokes it.
func TestBrowserWebAuthn(t *testing.T) {
	ctx := newChrome(t)
	s := webauthnServer(t)
	redirect, got := callbackRP(t)
	for _, c := range []map[string]any{
		{"client_id": "passkey-mfa", "settings": map[string]any{"authentication": map[string]any{"steps": []any{
			map[string]any{"options": []string{"password"}}, map[string]any{"options": []string{"webauthn"}},
		}}}},
		{"client_id": "passkey-login", "settings": map[string]any{"authentication": map[string]any{"steps": []any{
			map[string]any{"options": []string{"password", "webauthn"}},
		}}}},
		{"client_id": "identifier-first", "settings": map[string]any{"authentication": map[string]any{"steps": []any{
			map[string]any{"options": []string{"identifier"}}, map[string]any{"options": []string{"password", "webauthn"}},
		}}}},
	} {
		c["public"], c["first_party"], c["token_endpoint_auth_method"], c["enabled"] = true, true, "none", true
		c["redirect_uris"], c["grant_types"], c["scopes"] = []string{redirect}, []string{"authorization_code"}, []string{"openid", "profile"}
		if code := s.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating client %v: %d", c["client_id"], code)
		}
	}
	oauth := func(client string) *oauth2.Config {
		return &oauth2.Config{
			ClientID: client, RedirectURL: redirect, Scopes: []string{"openid", "profile"},
			Endpoint: oauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams},
		}
	}
	// login runs one authorization in the browser with the actions that
	// sign in, and exchanges the code the relying party receives.
	login := func(name, client string, actions ...chromedp.Action[chromedp.Void]) map[string]any {
		t.Helper()
		cfg := oauth(client)
		verifier := oauth2.GenerateVerifier()
		state := "state-" + name
		steps := append([]chromedp.Action[chromedp.Void]{
			chromedp.Navigate(strings.Replace(cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), "127.0.0.1", "localhost", 1)),
		}, actions...)
		steps = append(steps, chromedp.WaitVisible(`#done`))
		if err := chromedp.Do(ctx, steps...); err != nil {
			var body string
			body, _ = chromedp.Run(ctx, chromedp.OuterHTML[string](`body`))
			t.Fatalf("%s: %v\npage: %s\nserver: %s", name, err, body, s.Output())
		}
		q := <-got
		if q.Get("state") != state || q.Get("code") == "" {
			t.Fatalf("%s: callback %v", name, q)
		}
		tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("%s: exchanging the code: %v", name, err)
		}
		if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, struct{}{}); err != nil {
			t.Fatalf("%s: signing the browser out: %v", name, err)
		}
		return idTokenClaims(t, tok)
	}

	// The virtual authenticator: a platform passkey provider that verifies
	// the user.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("enabling the DevTools WebAuthn domain: %v", err)
	}
	va, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
		Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
		IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatalf("adding a virtual authenticator: %v", err)
	}

	// 1. Password, then passkey registration.
	var alice string
	var users struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if code := s.Admin(http.MethodGet, "/users?username=alice", nil, &users); code != http.StatusOK || len(users.Items) != 1 {
		t.Fatalf("finding alice: %d %v", code, users)
	}
	alice = users.Items[0].ID
	claims := login("enrol", "passkey-mfa",
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#f-nickname`),
		chromedp.SendKeys(`#f-nickname`, "Test laptop"),
		chromedp.Click(`#webauthn-start`),
	)
	if claims["sub"] != alice || !slices.Contains(amrOf(claims), "hwk") || !slices.Contains(amrOf(claims), "pwd") {
		t.Errorf("enrolment login: sub %v (alice is %s), amr %v", claims["sub"], alice, claims["amr"])
	}
	creds, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams(va))
	if err != nil || len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential {
		t.Fatalf("the virtual authenticator holds %+v (%v), want one resident credential", creds, err)
	}
	var listed struct {
		Items []struct {
			ID            string         `json:"id"`
			Authenticator string         `json:"authenticator"`
			Nickname      string         `json:"nickname"`
			LastUsedAt    string         `json:"last_used_at"`
			Details       map[string]any `json:"details"`
		} `json:"items"`
	}
	if code := s.Admin(http.MethodGet, "/users/"+alice+"/credentials", nil, &listed); code != http.StatusOK || len(listed.Items) != 1 {
		t.Fatalf("listing alice's credentials: %d %+v", code, listed)
	}
	cred := listed.Items[0]
	if cred.Authenticator != "authn.webauthn" || cred.Nickname != "Test laptop" || cred.Details["discoverable"] != true ||
		cred.Details["user_verified"] != true || cred.ID != b64url(creds.Credentials[0].CredentialID) {
		t.Errorf("listed credential %+v, virtual authenticator's id %s", cred, creds.Credentials[0].CredentialID)
	}

	// 2. Passwordless: the step opens with the password form; the other
	// option is the passkey, which names the user by itself.
	claims = login("passwordless", "passkey-login",
		chromedp.WaitVisible(`#f-username`),
		chromedp.Click(`nav.options a`),
		chromedp.WaitVisible(`#webauthn-start`),
		chromedp.Click(`#webauthn-start`),
	)
	if claims["sub"] != alice || !slices.Contains(amrOf(claims), "hwk") || slices.Contains(amrOf(claims), "pwd") {
		t.Errorf("passwordless login: sub %v, amr %v", claims["sub"], claims["amr"])
	}

	// 3. Second factor: the registered passkey after the password.
	claims = login("second-factor", "passkey-mfa",
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#webauthn-start`),
		chromedp.Click(`#webauthn-start`),
	)
	if claims["sub"] != alice || !slices.Contains(amrOf(claims), "hwk") || !slices.Contains(amrOf(claims), "mfa") {
		t.Errorf("second-factor login: sub %v, amr %v", claims["sub"], claims["amr"])
	}
	if code := s.Admin(http.MethodGet, "/users/"+alice+"/credentials", nil, &listed); code != http.StatusOK || len(listed.Items) != 1 || listed.Items[0].LastUsedAt == "" {
		t.Fatalf("credential after use: %d %+v", code, listed)
	}
	if n, _ := listed.Items[0].Details["sign_count"].(float64); n < 2 {
		t.Errorf("sign count after two assertions: %v", listed.Items[0].Details["sign_count"])
	}

	// 4. Identifier-first: once alice has a passkey, naming her routes the
	// second step to it instead of the password form.
	claims = login("identifier-first", "identifier-first",
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#webauthn-start`),
		chromedp.Click(`#webauthn-start`),
	)
	if claims["sub"] != alice || !slices.Contains(amrOf(claims), "hwk") {
		t.Errorf("identifier-first login: sub %v, amr %v", claims["sub"], claims["amr"])
	}

	// Revoked by the administrator, the passkey no longer signs in: the
	// next login of the first application registers a new one.
	if code := s.Admin(http.MethodDelete, "/users/"+alice+"/credentials/authn.webauthn/"+cred.ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoking the credential: %d", code)
	}
	if code := s.Admin(http.MethodDelete, "/users/"+alice+"/credentials/authn.webauthn/"+cred.ID, nil, nil); code != http.StatusNotFound {
		t.Errorf("revoking it twice: %d, want 404", code)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(strings.Replace(oauth("passkey-mfa").AuthCodeURL("state-after", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "127.0.0.1", "localhost", 1)),
		chromedp.WaitVisible(`#f-username`),
		chromedp.SendKeys(`#f-username`, "alice"),
		chromedp.SendKeys(`#f-password`, alicePass),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#f-nickname`), // registration again
	)
	if err != nil {
		t.Fatalf("login after revocation: %v", err)
	}
}

// TestWebAuthnPageWithoutJavaScript fetches the passkey step as a client
// without JavaScript would: the page explains that passkeys need it, keeps
// the other options, and is CSRF-protected; a malformed credential starts
// a new ceremony.
func TestWebAuthnPageWithoutJavaScript(t *testing.T) {
	s := webauthnServer(t)
	const redirect = "http://127.0.0.1:9/cb"
	if code := s.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "nojs", "public": true, "first_party": true, "token_endpoint_auth_method": "none", "enabled": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"},
		"settings": map[string]any{"authentication": map[string]any{"steps": []any{
			map[string]any{"options": []string{"webauthn", "password"}},
		}}},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	cfg := &oauth2.Config{ClientID: "nojs", RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token"}}
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, cfg.AuthCodeURL("nojs-state-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	req.Header.Set("Accept-Language", "de")
	p := b.Do(req)
	for p.Status >= 300 && p.Status < 400 {
		req, _ = http.NewRequest(http.MethodGet, p.Location, nil)
		req.Header.Set("Accept-Language", "de")
		p = b.Do(req)
	}
	if p.Status != http.StatusOK {
		t.Fatalf("first step: %d %s", p.Status, p.Body)
	}
	// The step opens with its first configured instance (the password);
	// the passkey is the other option.
	i := strings.Index(p.Body, "/login?flow=")
	if i < 0 {
		t.Fatalf("no link to the passkey option:\n%s", p.Body)
	}
	link := html.UnescapeString(p.Body[i : i+strings.IndexByte(p.Body[i:], '"')])
	base, _ := url.Parse(p.URL) // the public URL (localhost), where the cookies are
	target, _ := base.Parse(link)
	req, _ = http.NewRequest(http.MethodGet, target.String(), nil)
	req.Header.Set("Accept-Language", "de")
	p = b.Do(req)
	if p.Status != http.StatusOK {
		t.Fatalf("passkey step %s: %d %s", link, p.Status, p.Body)
	}
	for _, want := range []string{
		"<noscript>", "Passkeys benötigen JavaScript", // the explanation, in the page's language
		`name="csrf"`, `name="flow"`, "option=authn.password", // CSRF token, and the password as the other way
		`/ui/webauthn.js`, `data-challenge=`,
	} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("the passkey page lacks %q:\n%s", want, p.Body)
		}
	}
	// A post without the CSRF token is refused.
	_, fields := parseForm(t, p.Body)
	fields.Del("csrf")
	fields.Set("credential", "{}")
	loginURL := base.Scheme + "://" + base.Host + "/login"
	post, _ := http.NewRequest(http.MethodPost, loginURL, strings.NewReader(fields.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res := b.Do(post); res.Status != http.StatusForbidden {
		t.Errorf("post without CSRF token: %d, want 403", res.Status)
	}
	// Garbage instead of a credential is a new ceremony, not an error.
	_, fields = parseForm(t, p.Body)
	fields.Set("credential", `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}`)
	post, _ = http.NewRequest(http.MethodPost, loginURL, strings.NewReader(fields.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res := b.Do(post); res.Status != http.StatusOK || !strings.Contains(res.Body, "data-challenge=") {
		t.Errorf("post of a malformed credential: %d\n%s", res.Status, res.Body)
	}
	resp, err := http.Get(s.URL + "/ui/webauthn.js")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("script: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
