package oidc_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestDynamicRegistrationMetadata registers clients on the live server
// (RFC 7591) with the metadata of Front-Channel Logout 1.0
// (frontchannel_logout_uri, frontchannel_logout_session_required), DPoP
// (dpop_bound_access_tokens) and client_secret_jwt, reads them back, and
// uses the client: a client_secret_jwt assertion MACed with the issued
// secret, and a DPoP proof it must send.
func TestDynamicRegistrationMetadata(t *testing.T) {
	o := setup(t)
	register := func(body map[string]any) (int, map[string]any) {
		t.Helper()
		var it struct {
			Token string `json:"initial_access_token"`
		}
		if code := o.Admin(http.MethodPost, "/registration/tokens", map[string]any{"ttl_seconds": 600}, &it); code != http.StatusCreated {
			t.Fatalf("issuing an initial access token: %d", code)
		}
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, o.URL+"/oauth2/register", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+it.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		m := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}

	status, m := register(map[string]any{
		"client_name": "Dynamic service", "redirect_uris": []string{"https://rp.example/cb"},
		"grant_types": []string{"authorization_code", "client_credentials"}, "scope": "openid",
		"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": "HS256",
		"frontchannel_logout_uri": "https://rp.example/logout", "frontchannel_logout_session_required": true,
		"dpop_bound_access_tokens": true,
	})
	if status != http.StatusCreated {
		t.Fatalf("registration: %d %v", status, m)
	}
	if m["frontchannel_logout_uri"] != "https://rp.example/logout" || m["frontchannel_logout_session_required"] != true ||
		m["dpop_bound_access_tokens"] != true || m["token_endpoint_auth_method"] != "client_secret_jwt" {
		t.Errorf("registration response: %v", m)
	}
	id, _ := m["client_id"].(string)
	sec, _ := m["client_secret"].(string)
	tokenURL := o.provider.Endpoint().TokenURL
	form := func() url.Values {
		return url.Values{
			"grant_type": {"client_credentials"}, "client_assertion_type": {jwtBearerAssertion},
			"client_assertion": {hmacSign(t, jose.HS256, sec, clientAssertion(id, tokenURL, time.Minute))},
		}
	}
	key := newDPoPKey(t)

	t.Run("Dynamic/SecretJWTWithDPoP", func(t *testing.T) {
		status, m := postForm(t, tokenURL, form(), "", "", map[string]string{"DPoP": key.proof(t, "POST", tokenURL, "")})
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Fatalf("token: %d %v", status, m)
		}
	})
	t.Run("Dynamic/Negative/DPoPRequired", func(t *testing.T) {
		status, m := postForm(t, tokenURL, form(), "", "", nil)
		if status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("without a proof: %d %v", status, m)
		}
	})
	t.Run("Dynamic/Negative/FrontchannelOnAnotherOrigin", func(t *testing.T) {
		status, m := register(map[string]any{
			"redirect_uris": []string{"https://rp.example/cb"}, "frontchannel_logout_uri": "https://evil.example/logout",
		})
		if status != http.StatusBadRequest || m["error"] != "invalid_client_metadata" {
			t.Errorf("%d %v", status, m)
		}
	})
	t.Run("Dynamic/Negative/AsymmetricAlgForSecretJWT", func(t *testing.T) {
		status, m := register(map[string]any{
			"redirect_uris": []string{"https://rp.example/cb"}, "token_endpoint_auth_method": "client_secret_jwt",
			"token_endpoint_auth_signing_alg": "ES256",
		})
		if status != http.StatusBadRequest || m["error"] != "invalid_client_metadata" {
			t.Errorf("%d %v", status, m)
		}
	})
}
