package scim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

// TestDirectoryUserLoginLive: a user of a read-only LDAP directory (domain
// LDAP) completes an OpenID Connect code flow in a browser-like client,
// consent included. The ID token's sub is the routable id the directory
// hands out; the login leaves a shadow record in the database that carries
// the session and the remembered consent; a second login reuses both; the
// admin API and SCIM still list the user once. Applications get the claims
// of the user profile their claim_profile setting names.
func TestDirectoryUserLoginLive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	ldapURL := startSlapd(t)
	srv := startWithDirectory(t, ldapURL)
	tok := token(t, srv.URL+"/oauth2/token", "latch-admin", live.AdminSecret, "latch:admin")
	sc := client{t: t, base: srv.URL + "/scim2", token: tok}
	a := sc.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "LDAP/ann"`), nil).want(t, 200)
	res, _ := a.body["Resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("LDAP/ann before login: %s", a.raw)
	}
	annID := res[0].(map[string]any)["id"].(string)

	const redirect = "http://127.0.0.1:9/rp/callback"
	const secret = "rp-secret-0123456789abcdefghijklmnopq"
	newClient := func(id string, firstParty bool, settings map[string]any) *oauth2.Config {
		var out map[string]any
		body := map[string]any{"client_id": id, "client_secret": secret, "name": id, "first_party": firstParty,
			"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"},
			"scopes": []string{"openid", "profile", "email"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true}
		if settings != nil {
			body["settings"] = settings
		}
		if st := srv.Admin("POST", "/clients", body, &out); st != http.StatusCreated {
			t.Fatalf("creating client %s: %d %v", id, st, out)
		}
		return &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "profile"}}
	}
	rp := newClient("rp", false, nil)

	// First login: the login form, then the consent page (remembered).
	idt, _, consented := browserSignIn(t, srv, rp, "LDAP/ann", "ann-password")
	if !consented {
		t.Fatal("a third-party client got a code without the consent page")
	}
	if idt.Subject != annID || !strings.HasPrefix(idt.Subject, "LDAP:") {
		t.Fatalf("sub %q, want the directory id %q", idt.Subject, annID)
	}
	var sessions map[string]any
	if st := srv.Admin("GET", "/users/"+url.PathEscape(annID)+"/sessions", nil, &sessions); st != http.StatusOK || len(sessions["items"].([]any)) != 1 {
		t.Fatalf("ann's sessions: %d %v", st, sessions)
	}

	// Second login in a new browser: the same subject, no consent page.
	idt, _, consented = browserSignIn(t, srv, rp, "LDAP/ann", "ann-password")
	if consented {
		t.Fatal("the remembered consent was asked again")
	}
	if idt.Subject != annID {
		t.Fatalf("second login: sub %q, want %q", idt.Subject, annID)
	}
	if st := srv.Admin("GET", "/users/"+url.PathEscape(annID)+"/sessions", nil, &sessions); st != http.StatusOK || len(sessions["items"].([]any)) != 2 {
		t.Fatalf("ann's sessions after two logins: %d %v", st, sessions)
	}

	// Listed once: the shadow is not a second user.
	var users map[string]any
	if st := srv.Admin("GET", "/users?limit=1000", nil, &users); st != http.StatusOK {
		t.Fatalf("GET /users: %d %v", st, users)
	}
	n := 0
	for _, it := range users["items"].([]any) {
		if strings.EqualFold(it.(map[string]any)["username"].(string), "LDAP/ann") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("admin API lists LDAP/ann %d times: %v", n, users)
	}
	a = sc.do("GET", "/Users?filter="+url.QueryEscape(`userName sw "LDAP/"`), nil).want(t, 200)
	if a.body["totalResults"] != float64(2) {
		t.Fatalf("SCIM after the logins: %s", a.raw)
	}
	// The directory still decides: a wrong password does not log in.
	if _, _, err := trySignIn(t, srv, rp, "LDAP/ann", "wrong-password"); err == nil {
		t.Fatal("a wrong directory password signed in")
	}

	// Per-application profiles. dora's default profile has CC-LOCAL,
	// her work profile CC-WORK; the work app names the work profile.
	var out map[string]any
	if st := srv.Admin("PUT", "/claims/local", map[string]any{"uri": "http://example.com/claims/cost_center", "name": "cost_center",
		"attribute_mappings": map[string]string{"LDAP": "departmentNumber"}}, &out); st != http.StatusOK {
		t.Fatalf("PUT /claims/local: %d %v", st, out)
	}
	if st := srv.Admin("PUT", "/claims/dialects/oidc", map[string]any{"claim": "cost_center", "local_claim": "cost_center"}, &out); st != http.StatusOK {
		t.Fatalf("PUT /claims/dialects/oidc: %d %v", st, out)
	}
	out = nil
	if st := srv.Admin("POST", "/users", map[string]any{"username": "dora", "password": "dora-password-42",
		"attributes": map[string]any{"cost_center": "CC-LOCAL"}}, &out); st != http.StatusCreated {
		t.Fatalf("creating dora: %d %v", st, out)
	}
	dora := out["id"].(string)
	if st := srv.Admin("PUT", "/users/"+dora+"/profiles/work", map[string]any{"cost_center": "CC-WORK"}, &out); st != http.StatusOK {
		t.Fatalf("dora's work profile: %d %v", st, out)
	}
	work := newClient("work-app", true, map[string]any{"claim_profile": "work"})
	plain := newClient("plain-app", true, nil)
	for _, tc := range []struct {
		app  *oauth2.Config
		want string
	}{{work, "CC-WORK"}, {plain, "CC-LOCAL"}} {
		idt, info, _ := browserSignIn(t, srv, tc.app, "dora", "dora-password-42")
		var inToken, inInfo struct {
			CostCenter string `json:"cost_center"`
		}
		if err := idt.Claims(&inToken); err != nil {
			t.Fatal(err)
		}
		if err := info.Claims(&inInfo); err != nil {
			t.Fatal(err)
		}
		if inToken.CostCenter != tc.want || inInfo.CostCenter != tc.want {
			t.Errorf("%s: cost_center in ID token %q, UserInfo %q, want %q", tc.app.ClientID, inToken.CostCenter, inInfo.CostCenter, tc.want)
		}
	}
}

// browserSignIn runs an authorization code flow with PKCE in a new
// browser without JavaScript: it fills the password form, allows and
// remembers on the consent page, and returns the ID token as go-oidc
// verifies it, the UserInfo claims, and whether the consent page came.
func browserSignIn(t *testing.T, srv *live.Server, cfg *oauth2.Config, username, password string) (*oidc.IDToken, *oidc.UserInfo, bool) {
	t.Helper()
	idt, r, err := trySignIn(t, srv, cfg, username, password)
	if err != nil {
		t.Fatal(err)
	}
	return idt, r.info, r.consented
}

type signInResult struct {
	info      *oidc.UserInfo
	consented bool
}

// trySignIn is browserSignIn returning the failure of a login instead of
// ending the test.
func trySignIn(t *testing.T, srv *live.Server, cfg *oauth2.Config, username, password string) (*oidc.IDToken, signInResult, error) {
	t.Helper()
	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Endpoint = prov.Endpoint()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := oauth2.GenerateVerifier()
	next := cfg.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-0123456789"))
	var r signInResult
	var code string
	var resp *http.Response
	var body []byte
	for range 20 {
		if resp == nil {
			if resp, err = b.Get(next); err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
		loc := resp.Header.Get("Location")
		if loc != "" {
			u, err := resp.Request.URL.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(u.String(), cfg.RedirectURL) {
				code = u.Query().Get("code")
				break
			}
			next, resp = u.String(), nil
			continue
		}
		action, fields, err := live.ParseForm(string(body))
		if err != nil || !fields.Has("csrf") {
			return nil, r, fmt.Errorf("want a form, got %d: %s", resp.StatusCode, body)
		}
		switch {
		case strings.Contains(string(body), `name="password"`):
			if resp.StatusCode == http.StatusUnauthorized {
				return nil, r, fmt.Errorf("login refused: %d", resp.StatusCode)
			}
			fields.Set("username", username)
			fields.Set("password", password)
		case strings.Contains(string(body), `name="decision"`):
			r.consented = true
			fields.Set("decision", "allow")
			fields.Set("remember", "1")
		default:
			return nil, r, fmt.Errorf("unexpected form %d: %s", resp.StatusCode, body)
		}
		target, err := resp.Request.URL.Parse(action)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err = b.PostForm(target.String(), fields); err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
	}
	if code == "" {
		return nil, r, fmt.Errorf("the flow did not reach the redirect URI with a code")
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := prov.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.info, err = prov.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
		t.Fatal(err)
	}
	return idt, r, nil
}
