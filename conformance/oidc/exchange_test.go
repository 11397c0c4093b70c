package oidc_test

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	exchangerSecret = "exchanger-secret-0123456789abcdefghij"
	bearerSecret    = "bearer-secret-0123456789abcdefghijklm"
	apiAudience     = "https://api.example.com"
	partnerIssuer   = "https://idp.partner.example"
	tokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	jwtBearerGrant  = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	accessTokenType = "urn:ietf:params:oauth:token-type:access_token"
)

// grantConfig is an x/oauth2 client that sends grant_type (x/oauth2 lets
// EndpointParams replace client_credentials) with params.
func (o *op) grantConfig(id, secret, grantType string, params url.Values, scopes ...string) *clientcredentials.Config {
	v := url.Values{"grant_type": {grantType}}
	for k, vs := range params {
		v[k] = vs
	}
	return &clientcredentials.Config{
		ClientID: id, ClientSecret: secret, TokenURL: o.provider.Endpoint().TokenURL,
		AuthStyle: oauth2.AuthStyleInHeader, Scopes: scopes, EndpointParams: v,
	}
}

// accessClaims verifies an access token with go-oidc against the issuer's
// keys and returns its claims.
func (o *op) accessClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	tok, err := o.provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx(), raw)
	if err != nil {
		t.Fatalf("verifying the access token: %v", err)
	}
	m := map[string]any{}
	if err := tok.Claims(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTokenExchangeAndJWTBearer runs RFC 8693 token exchange and the RFC
// 7523 JWT bearer grant against the live server.
func TestTokenExchangeAndJWTBearer(t *testing.T) {
	o := setup(t)
	partner := newRPKey(t, "partner-1")
	stranger := newRPKey(t, "partner-1")
	for _, c := range []map[string]any{
		{
			"client_id": "exchanger", "client_secret": exchangerSecret, "name": "Gateway",
			"grant_types": []string{tokenExchange, "client_credentials"}, "scopes": []string{"openid", "profile", "email"},
			"audience": []string{apiAudience}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		},
		{
			"client_id": "bearer", "client_secret": bearerSecret, "name": "Partner bridge",
			"grant_types": []string{jwtBearerGrant}, "scopes": []string{"read", "write"},
			"token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		},
	} {
		if code := o.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating client %v: %d", c["client_id"], code)
		}
	}
	if code := o.Admin(http.MethodPatch, "/tenants/default", map[string]any{"settings": map[string]any{
		"jwt_bearer_issuers": []map[string]any{{"issuer": partnerIssuer, "jwks": partner.publicJWKS(t), "scopes": []string{"read"}}},
	}}, nil); code != http.StatusOK {
		t.Fatalf("setting the trusted issuers: %d", code)
	}

	// A user's access token, from the code flow.
	b := newBrowser(t)
	web := o.web()
	q, verifier := codeFlow(t, b, web, "nonce-exchange-1")
	userTok, err := web.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	userClaims := o.accessClaims(t, userTok.AccessToken)

	t.Run("Config/DiscoveryListsGrants", func(t *testing.T) {
		var m map[string]any
		if err := o.provider.Claims(&m); err != nil {
			t.Fatal(err)
		}
		grants, _ := m["grant_types_supported"].([]any)
		if !containsAny(grants, tokenExchange) || !containsAny(grants, jwtBearerGrant) {
			t.Errorf("grant_types_supported = %v", grants)
		}
	})

	t.Run("TokenExchange/Delegation", func(t *testing.T) {
		cfg := o.grantConfig("exchanger", exchangerSecret, tokenExchange, url.Values{
			"subject_token": {userTok.AccessToken}, "subject_token_type": {accessTokenType}, "audience": {apiAudience},
		}, "profile")
		tok, err := cfg.Token(ctx())
		if err != nil {
			t.Fatal(err)
		}
		if tok.Extra("issued_token_type") != accessTokenType {
			t.Errorf("issued_token_type = %v", tok.Extra("issued_token_type"))
		}
		c := o.accessClaims(t, tok.AccessToken)
		if c["sub"] != userClaims["sub"] || c["client_id"] != "exchanger" || c["scope"] != "profile" {
			t.Errorf("exchanged token claims: %v", c)
		}
		if aud, _ := c["aud"].([]any); !containsAny(aud, apiAudience) && c["aud"] != apiAudience {
			t.Errorf("aud = %v", c["aud"])
		}
		if _, ok := c["act"]; ok {
			t.Errorf("act without an actor token: %v", c["act"])
		}
		if exp, _ := c["exp"].(float64); int64(exp) > int64(userClaims["exp"].(float64)) {
			t.Errorf("the exchanged token outlives the subject token")
		}
	})

	t.Run("TokenExchange/WithActor", func(t *testing.T) {
		actorTok, err := (&clientcredentials.Config{ClientID: "exchanger", ClientSecret: exchangerSecret, TokenURL: o.provider.Endpoint().TokenURL}).Token(ctx())
		if err != nil {
			t.Fatal(err)
		}
		tok, err := o.grantConfig("exchanger", exchangerSecret, tokenExchange, url.Values{
			"subject_token": {userTok.AccessToken}, "subject_token_type": {accessTokenType},
			"actor_token": {actorTok.AccessToken}, "actor_token_type": {accessTokenType},
		}).Token(ctx())
		if err != nil {
			t.Fatal(err)
		}
		c := o.accessClaims(t, tok.AccessToken)
		act, _ := c["act"].(map[string]any)
		if c["sub"] != userClaims["sub"] || act["sub"] != "exchanger" {
			t.Errorf("claims: %v", c)
		}
		if !strings.Contains(c["scope"].(string), "email") {
			t.Errorf("without scope, the subject token's scopes: %v", c["scope"])
		}
	})

	q2, verifier2 := codeFlow(t, b, web, "nonce-exchange-2")
	revoked, err := web.Exchange(ctx(), q2.Get("code"), oauth2.VerifierOption(verifier2))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, o.URL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {revoked.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", webSecret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoking: %v", err)
	} else {
		_ = resp.Body.Close()
	}

	for _, tc := range []struct {
		name, id, secret, code string
		params                 url.Values
		scopes                 []string
	}{
		{"TokenExchange/Negative/BroaderScope", "exchanger", exchangerSecret, "invalid_scope", url.Values{"subject_token": {userTok.AccessToken}, "subject_token_type": {accessTokenType}}, []string{"offline_access"}},
		{"TokenExchange/Negative/InvalidSubjectToken", "exchanger", exchangerSecret, "invalid_request", url.Values{"subject_token": {"not-a-token"}, "subject_token_type": {accessTokenType}}, nil},
		{"TokenExchange/Negative/RevokedSubjectToken", "exchanger", exchangerSecret, "invalid_request", url.Values{"subject_token": {revoked.AccessToken}, "subject_token_type": {accessTokenType}}, nil},
		{"TokenExchange/Negative/UnsupportedTokenType", "exchanger", exchangerSecret, "invalid_request", url.Values{"subject_token": {userTok.AccessToken}, "subject_token_type": {"urn:ietf:params:oauth:token-type:saml2"}}, nil},
		{"TokenExchange/Negative/UnregisteredAudience", "exchanger", exchangerSecret, "invalid_target", url.Values{"subject_token": {userTok.AccessToken}, "subject_token_type": {accessTokenType}, "audience": {"https://other.example"}}, nil},
		{"TokenExchange/Negative/ClientNotRegistered", "web", webSecret, "unauthorized_client", url.Values{"subject_token": {userTok.AccessToken}, "subject_token_type": {accessTokenType}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := o.grantConfig(tc.id, tc.secret, tokenExchange, tc.params, tc.scopes...).Token(ctx())
			wantOAuthError(t, err, tc.code)
		})
	}

	tokenURL := o.provider.Endpoint().TokenURL
	assertion := func(k rpKey, iss, aud string) string {
		now := time.Now()
		return k.sign(t, map[string]any{"iss": iss, "sub": "partner-user-1", "aud": aud, "jti": newJTI(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	}
	t.Run("JWTBearer/TrustedIssuer", func(t *testing.T) {
		tok, err := o.grantConfig("bearer", bearerSecret, jwtBearerGrant, url.Values{"assertion": {assertion(partner, partnerIssuer, tokenURL)}}, "read").Token(ctx())
		if err != nil {
			t.Fatal(err)
		}
		c := o.accessClaims(t, tok.AccessToken)
		if c["sub"] != "partner-user-1" || c["scope"] != "read" || c["client_id"] != "bearer" {
			t.Errorf("claims: %v", c)
		}
	})
	used := assertion(partner, partnerIssuer, tokenURL)
	if _, err := o.grantConfig("bearer", bearerSecret, jwtBearerGrant, url.Values{"assertion": {used}}).Token(ctx()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, assertion, code string
		scopes                []string
	}{
		{"JWTBearer/Negative/Replayed", used, "invalid_grant", nil},
		{"JWTBearer/Negative/UntrustedIssuer", assertion(partner, "https://evil.example", tokenURL), "invalid_grant", nil},
		{"JWTBearer/Negative/WrongKey", assertion(stranger, partnerIssuer, tokenURL), "invalid_grant", nil},
		{"JWTBearer/Negative/WrongAudience", assertion(partner, partnerIssuer, "https://elsewhere.example/token"), "invalid_grant", nil},
		{"JWTBearer/Negative/AlgNone", unsignedJWT(map[string]any{"iss": partnerIssuer, "sub": "x", "aud": tokenURL, "jti": newJTI(), "exp": time.Now().Add(time.Minute).Unix()}), "invalid_grant", nil},
		{"JWTBearer/Negative/ScopeBeyondIssuer", assertion(partner, partnerIssuer, tokenURL), "invalid_scope", []string{"write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := o.grantConfig("bearer", bearerSecret, jwtBearerGrant, url.Values{"assertion": {tc.assertion}}, tc.scopes...).Token(ctx())
			wantOAuthError(t, err, tc.code)
		})
	}
}

func newJTI() string { return rand.Text() }
