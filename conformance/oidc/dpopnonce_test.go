package oidc_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// dpopCall makes a request with optional Basic credentials, form and DPoP
// proof, and returns the status, the JSON body and the headers.
func dpopCall(t *testing.T, method, u string, form url.Values, user, pass string, headers map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
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
	return resp.StatusCode, m, resp.Header
}

// withNonce sets a proof's nonce claim.
func withNonce(n any) func(map[string]any) { return func(c map[string]any) { c["nonce"] = n } }

// TestDPoPNonce runs RFC 9449 sections 8 and 9 against the live server
// with proofs made by go-jose: a client whose setting dpop_nonce_required
// is on gets use_dpop_nonce and a DPoP-Nonce header for a proof without
// the server's nonce, at the token endpoint (400) and at the UserInfo
// endpoint (401 with the DPoP challenge), and succeeds on the retry with
// it; forged, tampered and malformed nonces are refused like a missing
// one; other clients need none, until the node option
// oauth.dpop_nonce_required makes every client need one.
func TestDPoPNonce(t *testing.T) {
	o := setup(t)
	tokenURL := o.provider.Endpoint().TokenURL
	userinfoURL := o.URL + "/oauth2/userinfo"
	key := newDPoPKey(t)
	const secret = "dpop-nonce-secret-0123456789abcdefghijkl"
	const spaRedirectURI = "http://127.0.0.1:9/nonce/callback"
	for _, c := range []map[string]any{
		{
			"client_id": "nonce-svc", "client_secret": secret, "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
			"token_endpoint_auth_method": "client_secret_basic", "enabled": true, "settings": map[string]any{"dpop_nonce_required": true},
		},
		{
			"client_id": "nonce-free", "client_secret": secret, "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
			"token_endpoint_auth_method": "client_secret_basic", "enabled": true,
		},
		{
			"client_id": "nonce-spa", "public": true, "first_party": true, "token_endpoint_auth_method": "none",
			"redirect_uris": []string{spaRedirectURI}, "grant_types": []string{"authorization_code"},
			"scopes": []string{"openid", "profile"}, "enabled": true, "settings": map[string]any{"dpop_nonce_required": true},
		},
	} {
		if code := o.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating %v: %d", c["client_id"], code)
		}
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	tokenWith := func(id string, mod ...func(map[string]any)) (int, map[string]any, http.Header) {
		return dpopCall(t, http.MethodPost, tokenURL, cc, id, secret, map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "", mod...)})
	}
	wantNonceError := func(t *testing.T, status int, m map[string]any, h http.Header, wantStatus int) string {
		t.Helper()
		nonce := h.Get("DPoP-Nonce")
		if status != wantStatus || m["error"] != "use_dpop_nonce" || nonce == "" {
			t.Fatalf("got %d %v, DPoP-Nonce %q; want %d use_dpop_nonce and a nonce", status, m, nonce, wantStatus)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
		}
		return nonce
	}

	var nonce string
	t.Run("DPoPNonce/Token/RetryWithTheNonce", func(t *testing.T) {
		status, m, h := tokenWith("nonce-svc")
		nonce = wantNonceError(t, status, m, h, http.StatusBadRequest)
		status, m, h = tokenWith("nonce-svc", withNonce(nonce))
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Fatalf("retry with the nonce: %d %v", status, m)
		}
		if h.Get("DPoP-Nonce") != "" {
			t.Errorf("a fresh nonce came with a nonce that is far from expiring: %q", h.Get("DPoP-Nonce"))
		}
		// The nonce serves more than one proof while it is valid.
		if status, m, _ := tokenWith("nonce-svc", withNonce(nonce)); status != http.StatusOK {
			t.Errorf("second proof with the nonce: %d %v", status, m)
		}
	})

	t.Run("DPoPNonce/Token/Negative", func(t *testing.T) {
		if nonce == "" {
			t.Skip("no nonce")
		}
		raw, _ := base64.RawURLEncoding.DecodeString(nonce)
		tampered := append([]byte(nil), raw...)
		tampered[len(tampered)-1] ^= 1
		future := append([]byte(nil), raw...)
		future[3]++ // the issue time, years ahead, with the old MAC
		for name, n := range map[string]any{
			"Forged":          base64.RawURLEncoding.EncodeToString(make([]byte, len(raw))),
			"TamperedMAC":     base64.RawURLEncoding.EncodeToString(tampered),
			"TamperedTime":    base64.RawURLEncoding.EncodeToString(future),
			"Empty":           "",
			"NotAString":      42,
			"Truncated":       nonce[:len(nonce)/2],
			"ClientGenerated": "client-chosen-nonce",
		} {
			t.Run(name, func(t *testing.T) {
				status, m, h := tokenWith("nonce-svc", withNonce(n))
				fresh := wantNonceError(t, status, m, h, http.StatusBadRequest)
				if status, m, _ := tokenWith("nonce-svc", withNonce(fresh)); status != http.StatusOK {
					t.Errorf("retry with the fresh nonce: %d %v", status, m)
				}
			})
		}
	})

	t.Run("DPoPNonce/Token/OtherClientNeedsNone", func(t *testing.T) {
		if status, m, h := tokenWith("nonce-free"); status != http.StatusOK || m["token_type"] != "DPoP" || h.Get("DPoP-Nonce") != "" {
			t.Errorf("without a nonce: %d %v %q", status, m, h.Get("DPoP-Nonce"))
		}
	})

	t.Run("DPoPNonce/Token/WrongSecretWithTheNonce", func(t *testing.T) {
		if nonce == "" {
			t.Skip("no nonce")
		}
		status, m, _ := dpopCall(t, http.MethodPost, tokenURL, cc, "nonce-svc", "wrong-secret", map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "", withNonce(nonce))})
		if status != http.StatusUnauthorized || m["error"] != "invalid_client" {
			t.Errorf("wrong secret: %d %v", status, m)
		}
	})

	t.Run("DPoPNonce/CodeAndUserInfo", func(t *testing.T) {
		spa := &oauth2.Config{ClientID: "nonce-spa", RedirectURL: spaRedirectURI, Scopes: []string{oidc.ScopeOpenID, "profile"},
			Endpoint: oauth2.Endpoint{AuthURL: o.URL + "/oauth2/authorize", TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}}
		q, verifier := codeFlow(t, newBrowser(t), spa, "nonce-dpop-nonce-1")
		form := url.Values{
			"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {spa.RedirectURL},
			"client_id": {"nonce-spa"}, "code_verifier": {verifier},
		}
		// The refusal does not use the code up: the retry with the
		// nonce redeems it (section 8).
		status, m, h := dpopCall(t, http.MethodPost, tokenURL, form, "", "", map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "")})
		n := wantNonceError(t, status, m, h, http.StatusBadRequest)
		status, m, _ = dpopCall(t, http.MethodPost, tokenURL, form, "", "", map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "", withNonce(n))})
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Fatalf("code exchange with the nonce: %d %v", status, m)
		}
		at, _ := m["access_token"].(string)

		userinfo := func(mod ...func(map[string]any)) (int, map[string]any, http.Header) {
			return dpopCall(t, http.MethodGet, userinfoURL, nil, "", "", map[string]string{
				"Authorization": "DPoP " + at, "DPoP": key.proof(t, "GET", userinfoURL, at, mod...),
			})
		}
		status, m, h = userinfo()
		if status != http.StatusUnauthorized || h.Get("DPoP-Nonce") == "" ||
			!strings.HasPrefix(h.Get("WWW-Authenticate"), "DPoP ") || !strings.Contains(h.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
			t.Fatalf("userinfo without a nonce: %d %v, WWW-Authenticate %q, DPoP-Nonce %q", status, m, h.Get("WWW-Authenticate"), h.Get("DPoP-Nonce"))
		}
		n = h.Get("DPoP-Nonce")
		if status, m, h := userinfo(withNonce("forged-" + n)); status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
			t.Errorf("userinfo with a forged nonce: %d %v", status, m)
		}
		if status, m, _ := userinfo(withNonce(n)); status != http.StatusOK || m["sub"] == nil {
			t.Errorf("userinfo with the nonce: %d %v", status, m)
		}
	})
}

// TestDPoPNonceNodeOption runs a server with oauth.dpop_nonce_required:
// every client's proofs need a nonce.
func TestDPoPNonceNodeOption(t *testing.T) {
	o := setupWith(t, "LATCH_OAUTH_DPOP_NONCE_REQUIRED=true")
	tokenURL := o.provider.Endpoint().TokenURL
	key := newDPoPKey(t)
	const secret = "dpop-nonce-secret-0123456789abcdefghijkl"
	if code := o.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "any-svc", "client_secret": secret, "grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
		"token_endpoint_auth_method": "client_secret_basic", "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	status, m, h := dpopCall(t, http.MethodPost, tokenURL, cc, "any-svc", secret, map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "")})
	if status != http.StatusBadRequest || m["error"] != "use_dpop_nonce" || h.Get("DPoP-Nonce") == "" {
		t.Fatalf("without a nonce: %d %v %q", status, m, h.Get("DPoP-Nonce"))
	}
	status, m, _ = dpopCall(t, http.MethodPost, tokenURL, cc, "any-svc", secret, map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "", withNonce(h.Get("DPoP-Nonce")))})
	if status != http.StatusOK || m["token_type"] != "DPoP" {
		t.Errorf("with the nonce: %d %v", status, m)
	}
	// Bearer tokens, without a proof, need no nonce.
	if status, m, _ := dpopCall(t, http.MethodPost, tokenURL, cc, "any-svc", secret, nil); status != http.StatusOK || m["token_type"] != "bearer" && m["token_type"] != "Bearer" {
		t.Errorf("bearer token: %d %v", status, m)
	}
}
