package oidc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

const (
	webSecret   = "web-client-secret-0123456789abcdefghij"
	alicePass   = "alice-password-42"
	webRedirect = "http://127.0.0.1:9/web/callback"
	spaRedirect = "http://127.0.0.1:9/spa/callback"
	byeRedirect = "http://127.0.0.1:9/bye"
)

// op is the live server with its fixtures.
type op struct {
	*live.Server
	provider *oidc.Provider
}

func setup(t testing.TB) *op { return setupWith(t) }

// setupWith starts the server with extra environment variables and creates
// the fixtures.
func setupWith(t testing.TB, env ...string) *op {
	s := live.Start(t, env...)
	if code := s.Admin(http.MethodPost, "/users", map[string]any{
		"username": "alice", "password": alicePass, "email": "alice@example.com", "email_verified": true,
		"display_name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell", "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating alice: %d", code)
	}
	for _, c := range []map[string]any{
		{
			"client_id": "web", "client_secret": webSecret, "name": "Web App", "first_party": true,
			"redirect_uris": []string{webRedirect}, "grant_types": []string{"authorization_code", "refresh_token"},
			"scopes": []string{"openid", "profile", "email", "offline_access"}, "token_endpoint_auth_method": "client_secret_basic",
			"settings": map[string]any{"post_logout_redirect_uris": []string{byeRedirect}}, "enabled": true,
		},
		{
			"client_id": "spa", "name": "Single Page App", "public": true, "token_endpoint_auth_method": "none",
			"redirect_uris": []string{spaRedirect}, "grant_types": []string{"authorization_code", "refresh_token"},
			"scopes": []string{"openid", "profile", "email"}, "enabled": true,
		},
	} {
		if code := s.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating client %v: %d", c["client_id"], code)
		}
	}
	prov, err := oidc.NewProvider(context.Background(), s.URL)
	if err != nil {
		t.Fatalf("discovery with go-oidc: %v", err)
	}
	return &op{Server: s, provider: prov}
}

func (o *op) web() *oauth2.Config {
	return &oauth2.Config{
		ClientID: "web", ClientSecret: webSecret, RedirectURL: webRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: o.provider.Endpoint().AuthURL, TokenURL: o.provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{oidc.ScopeOpenID, "profile", "email"},
	}
}

func (o *op) spa() *oauth2.Config {
	return &oauth2.Config{
		ClientID: "spa", RedirectURL: spaRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: o.provider.Endpoint().AuthURL, TokenURL: o.provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{oidc.ScopeOpenID, "profile"},
	}
}

// loginAt signs alice in on the login page p and follows the redirects
// back to the client.
func loginAt(t testing.TB, b *browser, p page, password, stopAt string) page {
	t.Helper()
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("want the login page, got %s\n%s", p, p.Body)
	}
	return b.Submit(p, map[string]string{"username": "alice", "password": password}, stopAt)
}

// codeFlow runs an authorization request for cfg in b, logging in when
// asked, and returns the callback's query and the PKCE verifier.
func codeFlow(t testing.TB, b *browser, cfg *oauth2.Config, nonce string, extra ...oauth2.AuthCodeOption) (url.Values, string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}, extra...)
	p := b.Get(cfg.AuthCodeURL("state-1234567890", opts...), cfg.RedirectURL)
	if p.Location == "" {
		p = loginAt(t, b, p, alicePass, cfg.RedirectURL)
	}
	return p.Query(t, cfg.RedirectURL), verifier
}

func ctx() context.Context { return context.Background() }

func TestOP(t *testing.T) {
	o := setup(t)

	t.Run("Config/Discovery", func(t *testing.T) {
		var m map[string]any
		if err := o.provider.Claims(&m); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{
			"issuer":                 o.URL,
			"authorization_endpoint": o.URL + "/oauth2/authorize",
			"token_endpoint":         o.URL + "/oauth2/token",
			"userinfo_endpoint":      o.URL + "/oauth2/userinfo",
			"jwks_uri":               o.URL + "/.well-known/jwks.json",
			"end_session_endpoint":   o.URL + "/oauth2/logout",
		} {
			if m[k] != want {
				t.Errorf("%s = %v, want %s", k, m[k], want)
			}
		}
		for k, want := range map[string]string{
			"response_types_supported":         "code",
			"code_challenge_methods_supported": "S256",
			"subject_types_supported":          "public",
			"response_modes_supported":         "form_post",
		} {
			if l, _ := m[k].([]any); !containsAny(l, want) {
				t.Errorf("%s = %v, want it to list %s", k, m[k], want)
			}
		}
	})

	t.Run("Basic/CodeFlowWithPKCE", func(t *testing.T) {
		b := newBrowser(t)
		cfg := o.web()
		q, verifier := codeFlow(t, b, cfg, "nonce-basic-123")
		if q.Get("state") != "state-1234567890" || q.Get("code") == "" {
			t.Fatalf("callback %v", q)
		}
		tok, err := cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := o.provider.Verifier(&oidc.Config{ClientID: "web"}).Verify(ctx(), rawID)
		if err != nil {
			t.Fatalf("verifying the ID token with go-oidc: %v", err)
		}
		if idt.Nonce != "nonce-basic-123" {
			t.Errorf("nonce = %q", idt.Nonce)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
		var claims struct {
			AuthTime int64    `json:"auth_time"`
			SID      string   `json:"sid"`
			AMR      []string `json:"amr"`
			ACR      string   `json:"acr"`
			Email    string   `json:"email"`
			Name     string   `json:"name"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.AuthTime == 0 || claims.SID == "" || claims.ACR == "" || len(claims.AMR) == 0 {
			t.Errorf("ID token lacks auth_time/sid/acr/amr: %+v", claims)
		}
		if claims.Email != "alice@example.com" || claims.Name != "Alice Liddell" {
			t.Errorf("ID token claims: %+v", claims)
		}
		if header := jwtHeader(t, rawID); header["typ"] == "at+jwt" {
			t.Errorf("ID token typ = %v", header["typ"])
		}
		if header := jwtHeader(t, tok.AccessToken); header["typ"] != "at+jwt" {
			t.Errorf("access token typ = %v", header["typ"])
		}
		ui, err := o.provider.UserInfo(ctx(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		if ui.Subject != idt.Subject || ui.Email != "alice@example.com" || !ui.EmailVerified {
			t.Errorf("userinfo: %+v", ui)
		}

		// Refresh rotates the refresh token; reusing the old one is
		// refused and revokes the whole grant (RFC 9700 section 4.14.2).
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token")
		}
		old := tok.RefreshToken
		tok.Expiry = time.Now().Add(-time.Minute)
		fresh, err := cfg.TokenSource(ctx(), tok).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if fresh.RefreshToken == "" || fresh.RefreshToken == old || fresh.AccessToken == tok.AccessToken {
			t.Fatalf("refresh did not rotate: %+v", fresh)
		}
		if newID, _ := fresh.Extra("id_token").(string); newID == "" {
			t.Error("refresh returned no ID token")
		} else if _, err := o.provider.Verifier(&oidc.Config{ClientID: "web"}).Verify(ctx(), newID); err != nil {
			t.Errorf("refreshed ID token: %v", err)
		}
		_, err = cfg.TokenSource(ctx(), &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Minute)}).Token()
		wantOAuthError(t, err, "invalid_grant")
		_, err = cfg.TokenSource(ctx(), &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
		wantOAuthError(t, err, "invalid_grant")
		if active := o.introspect(t, fresh.AccessToken); active {
			t.Error("the access token of a replayed grant is still active")
		}
	})

	t.Run("Basic/SSOSessionAndPrompt", func(t *testing.T) {
		b := newBrowser(t)
		cfg := o.web()
		codeFlow(t, b, cfg, "nonce-sso-1")
		// Signed in: the next request gets a code without a login page.
		p := b.Get(cfg.AuthCodeURL("state-sso-22222", oidc.Nonce("nonce-sso-2"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cfg.RedirectURL)
		if q := p.Query(t, cfg.RedirectURL); q.Get("code") == "" {
			t.Fatalf("no code with a session: %v", q)
		}
		p = b.Get(cfg.AuthCodeURL("state-sso-33333", oauth2.SetAuthURLParam("prompt", "none"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cfg.RedirectURL)
		if q := p.Query(t, cfg.RedirectURL); q.Get("code") == "" {
			t.Fatalf("prompt=none with a session: %v", q)
		}
		// prompt=login and max_age=0 ask for the password again.
		for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
			p = b.Get(cfg.AuthCodeURL("state-sso-44444", opt, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cfg.RedirectURL)
			p = loginAt(t, b, p, alicePass, cfg.RedirectURL)
			if q := p.Query(t, cfg.RedirectURL); q.Get("code") == "" {
				t.Fatalf("after re-authentication: %v", q)
			}
		}
		// A fresh browser with prompt=none: login_required.
		p = newBrowser(t).Get(cfg.AuthCodeURL("state-sso-55555", oauth2.SetAuthURLParam("prompt", "none"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cfg.RedirectURL)
		if q := p.Query(t, cfg.RedirectURL); q.Get("error") != "login_required" || q.Get("state") != "state-sso-55555" {
			t.Fatalf("prompt=none without a session: %v", q)
		}
	})

	t.Run("Basic/Consent", func(t *testing.T) {
		b := newBrowser(t)
		cfg := o.spa()
		verifier := oauth2.GenerateVerifier()
		p := b.Get(cfg.AuthCodeURL("state-consent-1", oauth2.S256ChallengeOption(verifier)), cfg.RedirectURL)
		p = loginAt(t, b, p, alicePass, cfg.RedirectURL)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Single Page App") {
			t.Fatalf("want the consent page, got %s\n%s", p, p.Body)
		}
		denied := b.Submit(p, map[string]string{"decision": "deny"}, cfg.RedirectURL)
		if q := denied.Query(t, cfg.RedirectURL); q.Get("error") != "access_denied" {
			t.Fatalf("deny: %v", q)
		}
		p = b.Get(cfg.AuthCodeURL("state-consent-2", oauth2.S256ChallengeOption(verifier)), cfg.RedirectURL)
		allowed := b.Submit(p, map[string]string{"decision": "allow"}, cfg.RedirectURL)
		q := allowed.Query(t, cfg.RedirectURL)
		tok, err := cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("public client exchange: %v", err)
		}
		if _, err := o.provider.Verifier(&oidc.Config{ClientID: "spa"}).Verify(ctx(), tok.Extra("id_token").(string)); err != nil {
			t.Fatal(err)
		}
		// Remembered: no consent page the next time, unless asked for.
		p = b.Get(cfg.AuthCodeURL("state-consent-3", oauth2.S256ChallengeOption(verifier)), cfg.RedirectURL)
		if q := p.Query(t, cfg.RedirectURL); q.Get("code") == "" {
			t.Fatalf("remembered consent: %v", q)
		}
		p = b.Get(cfg.AuthCodeURL("state-consent-4", oauth2.SetAuthURLParam("prompt", "consent"), oauth2.S256ChallengeOption(verifier)), cfg.RedirectURL)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `value="allow"`) {
			t.Fatalf("prompt=consent: %s", p)
		}
		// A forged consent post (no CSRF token) is refused.
		req, _ := http.NewRequest(http.MethodPost, o.URL+"/oauth2/consent", strings.NewReader("decision=allow&flow=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if forged := b.Do(req); forged.Status != http.StatusForbidden {
			t.Errorf("consent without CSRF token: %s", forged)
		}
	})

	t.Run("FormPost", func(t *testing.T) {
		b := newBrowser(t)
		cfg := o.web()
		codeFlow(t, b, cfg, "nonce-fp-1")
		p := b.Get(cfg.AuthCodeURL("state-formpost1", oauth2.SetAuthURLParam("response_mode", "form_post"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cfg.RedirectURL)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, webRedirect) || !strings.Contains(p.Body, `name="code"`) || !strings.Contains(p.Body, "state-formpost1") {
			t.Fatalf("form_post response: %s\n%s", p, p.Body)
		}
	})

	t.Run("Negative", func(t *testing.T) {
		cfg := o.web()
		auth := o.provider.Endpoint().AuthURL
		// Errors that must not be sent to the redirect URI.
		for name, q := range map[string]url.Values{
			"unregistered redirect_uri": {"client_id": {"web"}, "response_type": {"code"}, "redirect_uri": {"http://127.0.0.1:9/evil"}, "scope": {"openid"}, "state": {"state-neg-00001"}},
			"unknown client":            {"client_id": {"nobody"}, "response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-neg-00002"}},
			// Request objects are not supported (discovery says so): one
			// is refused before anything in it is used, signed or not.
			"alg none request object": {"client_id": {"web"}, "response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-neg-00008"}, "request": {unsignedRequestObject()}},
		} {
			p := newBrowser(t).Get(auth+"?"+q.Encode(), "")
			if p.Status != http.StatusBadRequest || p.Location != "" {
				t.Errorf("%s: want an error page, got %s", name, p)
			}
		}
		// Errors sent to the redirect URI.
		b := newBrowser(t)
		codeFlow(t, b, cfg, "nonce-neg-session")
		for _, tc := range []struct {
			name string
			q    url.Values
			want string
		}{
			{"public client without PKCE", url.Values{"client_id": {"spa"}, "response_type": {"code"}, "redirect_uri": {spaRedirect}, "scope": {"openid"}, "state": {"state-neg-00003"}}, "invalid_request"},
			{"confidential client without PKCE", url.Values{"client_id": {"web"}, "response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-neg-00004"}}, "invalid_request"},
			{"plain PKCE", url.Values{"client_id": {"web"}, "response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-neg-00005"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}, "invalid_request"},
			{"unsupported response_type", url.Values{"client_id": {"web"}, "response_type": {"token"}, "redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-neg-00006"}}, "unsupported_response_type"},
			{"scope not allowed", url.Values{"client_id": {"web"}, "response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"openid admin"}, "state": {"state-neg-00007"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}, "invalid_scope"},
			{"nonce too short", url.Values{"client_id": {"web"}, "response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-neg-00009"}, "nonce": {"abc"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}, "insufficient_entropy"},
		} {
			p := b.Get(auth+"?"+tc.q.Encode(), tc.q.Get("redirect_uri"))
			q := p.Query(t, tc.q.Get("redirect_uri"))
			if q.Get("error") != tc.want || q.Get("state") != tc.q.Get("state") {
				t.Errorf("%s: got %v, want error=%s with the state", tc.name, q, tc.want)
			}
		}

		// Token endpoint errors.
		q, verifier := codeFlow(t, b, cfg, "nonce-neg-tok")
		bad := *cfg
		bad.ClientSecret = "wrong-secret-0123456789abcdefghijkl"
		_, err := bad.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		wantOAuthError(t, err, "invalid_client")
		_, err = cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
		wantOAuthError(t, err, "invalid_grant")

		q, verifier = codeFlow(t, b, cfg, "nonce-neg-reuse")
		first, err := cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		wantOAuthError(t, err, "invalid_grant")
		if o.introspect(t, first.AccessToken) {
			t.Error("a reused code left the first access token active (RFC 6749 section 4.1.2)")
		}
		// Wrong password: the login page again, with an error, no session.
		nb := newBrowser(t)
		p := nb.Get(cfg.AuthCodeURL("state-neg-00010", oauth2.S256ChallengeOption(verifier)), cfg.RedirectURL)
		p = loginAt(t, nb, p, "not-the-password", cfg.RedirectURL)
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, `role="alert"`) {
			t.Errorf("wrong password: %s", p)
		}
	})

	t.Run("RPInitiatedLogout", func(t *testing.T) {
		b := newBrowser(t)
		cfg := o.web()
		q, verifier := codeFlow(t, b, cfg, "nonce-logout-1")
		tok, err := cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		end := o.URL + "/oauth2/logout"
		// Unregistered post-logout redirect: refused, session kept.
		p := b.Get(end+"?"+url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {"http://127.0.0.1:9/evil"}}.Encode(), "")
		if p.Status != http.StatusBadRequest {
			t.Errorf("unregistered post_logout_redirect_uri: %s", p)
		}
		// Without a hint, the user confirms on a page.
		p = b.Get(end, "")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="csrf"`) {
			t.Fatalf("logout confirmation: %s", p)
		}
		p = b.Get(end+"?"+url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {byeRedirect}, "state": {"bye-state"}}.Encode(), byeRedirect)
		if got := p.Query(t, byeRedirect); got.Get("state") != "bye-state" {
			t.Errorf("post-logout redirect: %v", got)
		}
		p = b.Get(cfg.AuthCodeURL("state-after-logout", oauth2.SetAuthURLParam("prompt", "none"), oauth2.S256ChallengeOption(verifier)), cfg.RedirectURL)
		if got := p.Query(t, cfg.RedirectURL); got.Get("error") != "login_required" {
			t.Errorf("after logout, prompt=none: %v", got)
		}
	})
}

// introspect reports whether the server says token is active.
func (o *op) introspect(t *testing.T, token string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, o.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", webSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Active
}

func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want OAuth error %s, got %v", code, err)
	}
	if re.ErrorCode != code {
		t.Errorf("error = %q (%s), want %s", re.ErrorCode, re.ErrorDescription, code)
	}
	if re.Response.StatusCode >= 500 {
		t.Errorf("status %d", re.Response.StatusCode)
	}
}

func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// unsignedRequestObject is a JAR request object with alg none.
func unsignedRequestObject() string {
	return unsignedJWT(map[string]any{"client_id": "web", "redirect_uri": webRedirect, "scope": "openid"})
}

func containsAny(l []any, want string) bool {
	for _, v := range l {
		if v == want {
			return true
		}
	}
	return false
}
