package oidc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const jarRedirect = "http://127.0.0.1:9/jar/callback"

// push sends an authorization request to the pushed authorization request
// endpoint (RFC 9126 section 2.1) as client web, and returns the status
// and the decoded JSON answer.
func (o *op) push(t *testing.T, id, secret string, params url.Values) (int, map[string]any) {
	t.Helper()
	var m map[string]any
	if err := o.provider.Claims(&m); err != nil {
		t.Fatal(err)
	}
	endpoint, _ := m["pushed_authorization_request_endpoint"].(string)
	if endpoint == "" {
		t.Fatal("discovery lists no pushed_authorization_request_endpoint")
	}
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("PAR answer is not JSON: %d %s", resp.StatusCode, body)
	}
	return resp.StatusCode, out
}

// finishCodeFlow follows an authorization URL in b, logs alice in, and
// exchanges the code, checking the ID token's nonce with go-oidc.
func (o *op) finishCodeFlow(t *testing.T, b *browser, cfg *oauth2.Config, authURL, verifier, nonce string) {
	t.Helper()
	p := b.Get(authURL, cfg.RedirectURL)
	if p.Location == "" {
		p = loginAt(t, b, p, alicePass, cfg.RedirectURL)
	}
	q := p.Query(t, cfg.RedirectURL)
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	tok, err := cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := o.provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(ctx(), rawID)
	if err != nil {
		t.Fatalf("verifying the ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
}

// TestPushedAndSignedRequests runs pushed authorization requests (RFC
// 9126) and request objects (RFC 9101, OpenID Connect Core 1.0 section
// 6.1) against the live server.
func TestPushedAndSignedRequests(t *testing.T) {
	o := setup(t)
	key := newRPKey(t, "jar-1")
	intruder := newRPKey(t, "jar-1")
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "jar", "client_secret": webSecret, "name": "Signed requests", "first_party": true,
		"redirect_uris": []string{jarRedirect}, "grant_types": []string{"authorization_code"},
		"scopes": []string{"openid", "profile"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		"settings": map[string]any{"jwks": key.publicJWKS(t), "request_object_signing_alg": "ES256"},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating client jar: %d", code)
	}
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "par-only", "client_secret": webSecret, "name": "PAR only", "first_party": true,
		"redirect_uris": []string{jarRedirect}, "grant_types": []string{"authorization_code"},
		"scopes": []string{"openid"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		"settings": map[string]any{"require_pushed_authorization_requests": true},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating client par-only: %d", code)
	}
	auth := o.provider.Endpoint().AuthURL
	jarCfg := &oauth2.Config{
		ClientID: "jar", ClientSecret: webSecret, RedirectURL: jarRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: auth, TokenURL: o.provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{oidc.ScopeOpenID},
	}
	authParams := func(cfg *oauth2.Config, verifier, nonce string) url.Values {
		return url.Values{
			"client_id": {cfg.ClientID}, "response_type": {"code"}, "redirect_uri": {cfg.RedirectURL},
			"scope": {"openid"}, "state": {"state-par-123456"}, "nonce": {nonce},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		}
	}
	requestObject := func(k rpKey, params url.Values) string {
		claims := map[string]any{"iss": "jar", "aud": o.URL, "exp": time.Now().Add(5 * time.Minute).Unix(), "iat": time.Now().Unix()}
		for name := range params {
			claims[name] = params.Get(name)
		}
		return k.sign(t, claims)
	}
	errorPage := func(t *testing.T, u string) {
		t.Helper()
		p := newBrowser(t).Get(u, "")
		if p.Status != http.StatusBadRequest || p.Location != "" {
			t.Errorf("want an error page, got %s", p)
		}
	}

	t.Run("Config/DiscoveryListsPARAndRequestObjects", func(t *testing.T) {
		var m map[string]any
		if err := o.provider.Claims(&m); err != nil {
			t.Fatal(err)
		}
		algs, _ := m["request_object_signing_alg_values_supported"].([]any)
		if m["request_parameter_supported"] != true || !containsAny(algs, "ES256") || containsAny(algs, "none") {
			t.Errorf("request objects in discovery: %v %v", m["request_parameter_supported"], algs)
		}
		if m["pushed_authorization_request_endpoint"] != o.URL+"/oauth2/par" {
			t.Errorf("pushed_authorization_request_endpoint = %v", m["pushed_authorization_request_endpoint"])
		}
	})

	t.Run("PAR/CodeFlow", func(t *testing.T) {
		cfg := o.web()
		verifier := oauth2.GenerateVerifier()
		status, body := o.push(t, "web", webSecret, authParams(cfg, verifier, "nonce-par-0001"))
		uri, _ := body["request_uri"].(string)
		if status != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] == nil {
			t.Fatalf("push: %d %v", status, body)
		}
		authURL := auth + "?" + url.Values{"client_id": {"web"}, "request_uri": {uri}}.Encode()
		o.finishCodeFlow(t, newBrowser(t), cfg, authURL, verifier, "nonce-par-0001")
		// A request_uri is used once.
		errorPage(t, authURL)
	})

	t.Run("PAR/SignedRequestObject", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		ro := requestObject(key, authParams(jarCfg, verifier, "nonce-par-jar-1"))
		status, body := o.push(t, "jar", webSecret, url.Values{"client_id": {"jar"}, "request": {ro}})
		uri, _ := body["request_uri"].(string)
		if status != http.StatusCreated || uri == "" {
			t.Fatalf("push: %d %v", status, body)
		}
		o.finishCodeFlow(t, newBrowser(t), jarCfg, auth+"?"+url.Values{"client_id": {"jar"}, "request_uri": {uri}}.Encode(), verifier, "nonce-par-jar-1")
	})

	t.Run("JAR/SignedRequestObject", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		ro := requestObject(key, authParams(jarCfg, verifier, "nonce-jar-00001"))
		// Only the parameters inside the object count (RFC 9101 section 5).
		authURL := auth + "?" + url.Values{"client_id": {"jar"}, "request": {ro}, "nonce": {"outer-nonce-ignored"}}.Encode()
		o.finishCodeFlow(t, newBrowser(t), jarCfg, authURL, verifier, "nonce-jar-00001")
	})

	t.Run("PAR/Required", func(t *testing.T) {
		cfg := &oauth2.Config{ClientID: "par-only", RedirectURL: jarRedirect, Endpoint: oauth2.Endpoint{AuthURL: auth}, Scopes: []string{"openid"}}
		errorPage(t, cfg.AuthCodeURL("state-par-only-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	})

	verifier := oauth2.GenerateVerifier()
	good := authParams(jarCfg, verifier, "nonce-jar-neg-1")
	for _, tc := range []struct {
		name string
		q    url.Values
	}{
		{"JAR/Negative/AlgNone", url.Values{"client_id": {"jar"}, "request": {unsignedJWT(map[string]any{"client_id": "jar", "redirect_uri": jarRedirect, "scope": "openid", "response_type": "code"})}}},
		{"JAR/Negative/WrongKey", url.Values{"client_id": {"jar"}, "request": {requestObject(intruder, good)}}},
		{"JAR/Negative/OtherClientsObject", url.Values{"client_id": {"web"}, "request": {requestObject(key, good)}}},
		{"PAR/Negative/UnknownRequestURI", url.Values{"client_id": {"web"}, "request_uri": {"urn:ietf:params:oauth:request_uri:nope"}}},
		{"PAR/Negative/RemoteRequestURI", url.Values{"client_id": {"web"}, "request_uri": {"https://rp.example/request.jwt"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { errorPage(t, auth+"?"+tc.q.Encode()) })
	}

	t.Run("PAR/Negative/RequestURIOfAnotherClient", func(t *testing.T) {
		status, body := o.push(t, "web", webSecret, authParams(o.web(), oauth2.GenerateVerifier(), "nonce-par-other"))
		if status != http.StatusCreated {
			t.Fatalf("push: %d %v", status, body)
		}
		uri, _ := body["request_uri"].(string)
		errorPage(t, auth+"?"+url.Values{"client_id": {"jar"}, "request_uri": {uri}}.Encode())
	})

	for _, tc := range []struct {
		name, id, secret, code string
		params                 url.Values
	}{
		{"PAR/Negative/WrongSecret", "web", "wrong-secret-0123456789", "invalid_client", authParams(o.web(), verifier, "nonce-par-neg-1")},
		{"PAR/Negative/BadRedirectURI", "web", webSecret, "invalid_request", func() url.Values {
			v := authParams(o.web(), verifier, "nonce-par-neg-2")
			v.Set("redirect_uri", "https://evil.example/cb")
			return v
		}()},
		{"PAR/Negative/MissingPKCE", "spa", "", "invalid_request", func() url.Values {
			v := authParams(o.spa(), verifier, "nonce-par-neg-3")
			v.Del("code_challenge")
			v.Del("code_challenge_method")
			return v
		}()},
		{"PAR/Negative/RequestURIInside", "web", webSecret, "invalid_request", func() url.Values {
			v := authParams(o.web(), verifier, "nonce-par-neg-4")
			v.Set("request_uri", "urn:ietf:params:oauth:request_uri:x")
			return v
		}()},
		{"PAR/Negative/AlgNoneRequestObject", "jar", webSecret, "invalid_request_object", url.Values{"client_id": {"jar"}, "request": {unsignedJWT(map[string]any{"client_id": "jar", "redirect_uri": jarRedirect, "scope": "openid", "response_type": "code"})}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := o.push(t, tc.id, tc.secret, tc.params)
			if body["error"] != tc.code || status >= 500 || status < 400 {
				t.Errorf("push: %d %v, want %s", status, body, tc.code)
			}
		})
	}
}
