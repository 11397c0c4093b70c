package oidc_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// postForm posts form to u with optional Basic credentials and extra
// headers, and decodes the JSON answer.
func postForm(t *testing.T, u string, form url.Values, user, pass string, headers map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	m := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// introspection returns the server's introspection answer for token.
func (o *op) introspection(t *testing.T, token string) map[string]any {
	t.Helper()
	_, m := postForm(t, o.URL+"/oauth2/introspect", url.Values{"token": {token}}, "web", webSecret, nil)
	return m
}

// TestOpaqueAccessTokens runs a client whose settings.access_token_format
// is "opaque": its access tokens are not JWTs, and introspection (RFC
// 7662), revocation (RFC 7009) and the UserInfo endpoint work with them as
// with JWTs.
func TestOpaqueAccessTokens(t *testing.T) {
	o := setup(t)
	const opaqueSecret = "opaque-client-secret-0123456789abcdefghij"
	const opaqueRedirect = "http://127.0.0.1:9/opaque/callback"
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "opaque-app", "client_secret": opaqueSecret, "name": "Opaque App", "first_party": true,
		"redirect_uris": []string{opaqueRedirect}, "grant_types": []string{"authorization_code", "client_credentials", "refresh_token"},
		"scopes": []string{"openid", "profile", "read"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		"settings": map[string]any{"access_token_format": "opaque"},
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	cc := &clientcredentials.Config{ClientID: "opaque-app", ClientSecret: opaqueSecret, TokenURL: o.provider.Endpoint().TokenURL, Scopes: []string{"read"}}

	t.Run("Opaque/ClientCredentials", func(t *testing.T) {
		tok, err := cc.Token(ctx())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(tok.AccessToken, ".") == 2 {
			t.Fatalf("access token %q looks like a JWT", tok.AccessToken)
		}
		if _, err := o.provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx(), tok.AccessToken); err == nil {
			t.Error("an opaque token verified as a JWT")
		}
		m := o.introspection(t, tok.AccessToken)
		if m["active"] != true || m["client_id"] != "opaque-app" || m["scope"] != "read" || m["iss"] != o.URL || m["jti"] == "" || m["exp"] == nil {
			t.Fatalf("introspection: %v", m)
		}
		if status, _ := postForm(t, o.URL+"/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, "opaque-app", opaqueSecret, nil); status != http.StatusOK {
			t.Fatalf("revocation: %d", status)
		}
		if m := o.introspection(t, tok.AccessToken); m["active"] != false {
			t.Errorf("after revocation: %v", m)
		}
	})

	t.Run("Opaque/CodeFlowAndUserInfo", func(t *testing.T) {
		cfg := &oauth2.Config{ClientID: "opaque-app", ClientSecret: opaqueSecret, RedirectURL: opaqueRedirect, Scopes: []string{oidc.ScopeOpenID, "profile"},
			Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: o.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
		q, verifier := codeFlow(t, newBrowser(t), cfg, "nonce-opaque-1")
		tok, err := cfg.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(tok.AccessToken, ".") == 2 {
			t.Fatalf("access token %q looks like a JWT", tok.AccessToken)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := o.provider.Verifier(&oidc.Config{ClientID: "opaque-app"}).Verify(ctx(), rawID)
		if err != nil {
			t.Fatal(err)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash of the opaque token: %v", err)
		}
		ui, err := o.provider.UserInfo(ctx(), oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != idt.Subject {
			t.Fatalf("userinfo: %v %+v", err, ui)
		}
		// The refreshed token is opaque too, and the old one still works
		// until it expires.
		tok.Expiry = time.Now().Add(-time.Minute)
		next, err := cfg.TokenSource(ctx(), tok).Token()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(next.AccessToken, ".") == 2 || o.introspection(t, next.AccessToken)["active"] != true {
			t.Errorf("refreshed token %q", next.AccessToken)
		}
	})

	t.Run("JWT/StillTheDefault", func(t *testing.T) {
		tok, err := (&clientcredentials.Config{ClientID: "web", ClientSecret: webSecret, TokenURL: o.provider.Endpoint().TokenURL}).Token(ctx())
		if err == nil && strings.Count(tok.AccessToken, ".") != 2 {
			t.Errorf("web's token %q is not a JWT", tok.AccessToken)
		}
	})
}

// dpopKey makes DPoP proofs with go-jose, as an RP library would.
type dpopKey struct{ priv *ecdsa.PrivateKey }

func newDPoPKey(t *testing.T) dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return dpopKey{k}
}

// proof is a DPoP proof (RFC 9449 section 4.2) for htm and htu, with ath
// when token is set.
func (k dpopKey) proof(t *testing.T, htm, htu, token string, mod ...func(map[string]any)) string {
	t.Helper()
	claims := map[string]any{"jti": rand.Text(), "htm": htm, "htu": htu, "iat": time.Now().Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	for _, m := range mod {
		m(claims)
	}
	opts := (&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", jose.JSONWebKey{Key: &k.priv.PublicKey})
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// thumbprint is the key's RFC 7638 SHA-256 thumbprint, base64url.
func (k dpopKey) thumbprint(t *testing.T) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: &k.priv.PublicKey}).Thumbprint(cryptoSHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// userinfoWith calls the UserInfo endpoint with an Authorization header
// and an optional DPoP proof.
func userinfoWith(t *testing.T, u, authorization, proof string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", authorization)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode == http.StatusOK {
		s, _ := m["sub"].(string)
		return resp.StatusCode, s
	}
	e, _ := m["error"].(string)
	return resp.StatusCode, e
}

// TestDPoP runs RFC 9449 against the live server with proofs made by
// go-jose: bound tokens (token_type DPoP, cnf.jkt) from the token
// endpoint, the UserInfo endpoint with the DPoP scheme and a proof of the
// same key, bound refresh tokens of a public client, and the negative
// cases (replay, wrong method or URL, wrong key, bound token as bearer).
func TestDPoP(t *testing.T) {
	o := setup(t)
	tokenURL := o.provider.Endpoint().TokenURL
	userinfoURL := o.URL + "/oauth2/userinfo"
	key := newDPoPKey(t)
	other := newDPoPKey(t)
	const svcSecret = "dpop-service-secret-0123456789abcdefghij"
	const spaRedirectURI = "http://127.0.0.1:9/dpop/callback"
	for _, c := range []map[string]any{
		{
			"client_id": "dpop-svc", "client_secret": svcSecret, "name": "DPoP service", "grant_types": []string{"client_credentials"},
			"scopes": []string{"read"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		},
		{
			"client_id": "dpop-spa", "name": "DPoP SPA", "public": true, "first_party": true, "token_endpoint_auth_method": "none",
			"redirect_uris": []string{spaRedirectURI}, "grant_types": []string{"authorization_code", "refresh_token"},
			"scopes": []string{"openid", "profile"}, "enabled": true,
		},
		{
			"client_id": "dpop-exchanger", "client_secret": svcSecret, "name": "Exchanger", "grant_types": []string{tokenExchange},
			"scopes": []string{"openid", "profile"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		},
		{
			"client_id": "dpop-only", "client_secret": svcSecret, "name": "DPoP required", "grant_types": []string{"client_credentials"},
			"scopes": []string{"read"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
			"settings": map[string]any{"dpop_bound_access_tokens": true},
		},
	} {
		if code := o.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating %v: %d", c["client_id"], code)
		}
	}

	t.Run("Config/DiscoveryListsDPoP", func(t *testing.T) {
		var m map[string]any
		if err := o.provider.Claims(&m); err != nil {
			t.Fatal(err)
		}
		algs, _ := m["dpop_signing_alg_values_supported"].([]any)
		if !containsAny(algs, "ES256") || containsAny(algs, "HS256") || containsAny(algs, "none") {
			t.Errorf("dpop_signing_alg_values_supported = %v", algs)
		}
	})

	t.Run("DPoP/ClientCredentials", func(t *testing.T) {
		status, m := postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}}, "dpop-svc", svcSecret, map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "")})
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Fatalf("token: %d %v", status, m)
		}
		at, _ := m["access_token"].(string)
		claims := o.accessClaims(t, at)
		cnf, _ := claims["cnf"].(map[string]any)
		if cnf["jkt"] != key.thumbprint(t) {
			t.Errorf("cnf = %v, want jkt %s", claims["cnf"], key.thumbprint(t))
		}
		in := o.introspection(t, at)
		if in["token_type"] != "DPoP" || in["cnf"] == nil {
			t.Errorf("introspection: %v", in)
		}
	})

	// A public client signs in alice with PKCE and DPoP.
	spa := &oauth2.Config{ClientID: "dpop-spa", RedirectURL: spaRedirectURI, Scopes: []string{oidc.ScopeOpenID, "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	b := newBrowser(t)
	q, verifier := codeFlow(t, b, spa, "nonce-dpop-0001")
	status, m := postForm(t, tokenURL, url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {spa.RedirectURL},
		"client_id": {"dpop-spa"}, "code_verifier": {verifier},
	}, "", "", map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "")})
	if status != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("code exchange with DPoP: %d %v", status, m)
	}
	at, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)

	t.Run("DPoP/UserInfo", func(t *testing.T) {
		if status, sub := userinfoWith(t, userinfoURL, "DPoP "+at, key.proof(t, "GET", userinfoURL, at)); status != http.StatusOK || sub == "" {
			t.Fatalf("userinfo with a proof: %d %s", status, sub)
		}
	})

	replayed := key.proof(t, "GET", userinfoURL, at)
	if status, _ := userinfoWith(t, userinfoURL, "DPoP "+at, replayed); status != http.StatusOK {
		t.Fatalf("first use of a proof: %d", status)
	}
	for _, tc := range []struct{ name, auth, proof, want string }{
		{"Negative/BoundTokenAsBearer", "Bearer " + at, "", "invalid_token"},
		{"Negative/NoProof", "DPoP " + at, "", "invalid_dpop_proof"},
		{"Negative/ReplayedProof", "DPoP " + at, replayed, "invalid_dpop_proof"},
		{"Negative/OtherKey", "DPoP " + at, other.proof(t, "GET", userinfoURL, at), "invalid_dpop_proof"},
		{"Negative/WrongMethod", "DPoP " + at, key.proof(t, "POST", userinfoURL, at), "invalid_dpop_proof"},
		{"Negative/WrongURL", "DPoP " + at, key.proof(t, "GET", o.URL+"/oauth2/token", at), "invalid_dpop_proof"},
		{"Negative/NoATH", "DPoP " + at, key.proof(t, "GET", userinfoURL, ""), "invalid_dpop_proof"},
	} {
		t.Run("DPoP/UserInfo/"+tc.name, func(t *testing.T) {
			status, got := userinfoWith(t, userinfoURL, tc.auth, tc.proof)
			if status != http.StatusUnauthorized || got != tc.want {
				t.Errorf("got %d %s, want 401 %s", status, got, tc.want)
			}
		})
	}

	t.Run("DPoP/Negative/BoundTokenNotExchanged", func(t *testing.T) {
		_, err := o.grantConfig("dpop-exchanger", svcSecret, tokenExchange, url.Values{
			"subject_token": {at}, "subject_token_type": {accessTokenType},
		}, "profile").Token(ctx())
		wantOAuthError(t, err, "invalid_request")
	})

	t.Run("DPoP/Token/Negative", func(t *testing.T) {
		old := key.proof(t, "POST", tokenURL, "", func(c map[string]any) { c["iat"] = time.Now().Add(-10 * time.Minute).Unix() })
		reused := key.proof(t, "POST", tokenURL, "")
		if status, _ := postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}}, "dpop-svc", svcSecret, map[string]string{"DPoP": reused}); status != http.StatusOK {
			t.Fatalf("first use: %d", status)
		}
		for name, proof := range map[string]string{
			"Old":      old,
			"Replayed": reused,
			"WrongURL": key.proof(t, "POST", userinfoURL, ""),
			"WrongHTM": key.proof(t, "GET", tokenURL, ""),
			"NotAJWS":  "not-a-proof",
		} {
			status, m := postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}}, "dpop-svc", svcSecret, map[string]string{"DPoP": proof})
			if status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
				t.Errorf("%s: %d %v", name, status, m)
			}
		}
	})

	t.Run("DPoP/Negative/RequiredByClient", func(t *testing.T) {
		status, m := postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}}, "dpop-only", svcSecret, nil)
		if status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("without a proof: %d %v", status, m)
		}
		status, m = postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}}, "dpop-only", svcSecret, map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "")})
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Errorf("with a proof: %d %v", status, m)
		}
	})

	t.Run("DPoP/AuthorizationCodeBoundWithDPoPJKT", func(t *testing.T) {
		// RFC 9449 section 10: dpop_jkt binds the code to the key. A
		// refused exchange uses the code up, like a wrong PKCE verifier.
		exchange := func(proof string) (int, map[string]any) {
			q, verifier := codeFlow(t, newBrowser(t), spa, "nonce-dpop-0002", oauth2.SetAuthURLParam("dpop_jkt", key.thumbprint(t)))
			h := map[string]string{}
			if proof != "" {
				h["DPoP"] = proof
			}
			return postForm(t, tokenURL, url.Values{
				"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {spa.RedirectURL},
				"client_id": {"dpop-spa"}, "code_verifier": {verifier},
			}, "", "", h)
		}
		if status, m := exchange(""); status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("without a proof: %d %v", status, m)
		}
		if status, m := exchange(other.proof(t, "POST", tokenURL, "")); status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("with another key: %d %v", status, m)
		}
		if status, m := exchange(key.proof(t, "POST", tokenURL, "")); status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Errorf("with the key: %d %v", status, m)
		}
		b := newBrowser(t)
		p := b.Get(spa.AuthCodeURL("state-dpop-bad", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("dpop_jkt", "not-a-thumbprint")), spa.RedirectURL)
		if p.Location == "" {
			p = loginAt(t, b, p, alicePass, spa.RedirectURL)
		}
		if got := p.Query(t, spa.RedirectURL); got.Get("error") != "invalid_request" {
			t.Errorf("malformed dpop_jkt: %v", got)
		}
	})

	t.Run("DPoP/PublicRefreshIsBound", func(t *testing.T) {
		refresh := func(proof string) (int, map[string]any) {
			h := map[string]string{}
			if proof != "" {
				h["DPoP"] = proof
			}
			return postForm(t, tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"dpop-spa"}}, "", "", h)
		}
		if status, m := refresh(""); status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("refresh without a proof: %d %v", status, m)
		}
		if status, m := refresh(other.proof(t, "POST", tokenURL, "")); status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("refresh with another key: %d %v", status, m)
		}
		status, m := refresh(key.proof(t, "POST", tokenURL, ""))
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Fatalf("refresh with the key: %d %v", status, m)
		}
	})
}

const cryptoSHA256 = crypto.SHA256
