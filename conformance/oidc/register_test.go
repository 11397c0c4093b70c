package oidc_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestDynamicRegistrationEndpoint checks the live server's registration
// endpoint (RFC 7591) refuses requests without a valid initial access
// token. Registrations with a token are covered in builtin/oauth, where
// the test can issue one.
func TestDynamicRegistrationEndpoint(t *testing.T) {
	o := setup(t)
	var m map[string]any
	if err := o.provider.Claims(&m); err != nil {
		t.Fatal(err)
	}
	endpoint, _ := m["registration_endpoint"].(string)
	if endpoint != o.URL+"/oauth2/register" {
		t.Fatalf("registration_endpoint = %v", m["registration_endpoint"])
	}
	for name, auth := range map[string]string{"Dynamic/Negative/NoToken": "", "Dynamic/Negative/UnknownToken": "Bearer not-issued"} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"redirect_uris":["https://rp.example/cb"]}`))
			req.Header.Set("Content-Type", "application/json")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_token" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%d %v %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestDynamicRegistrationWithInitialToken registers a client on a live
// server with an initial access token the admin API issued, uses the
// registration access token to read it back, and checks the initial token
// works once.
func TestDynamicRegistrationWithInitialToken(t *testing.T) {
	o := setup(t)
	var it struct {
		Token string `json:"initial_access_token"`
	}
	if code := o.Admin(http.MethodPost, "/registration/tokens", map[string]any{"ttl_seconds": 600}, &it); code != http.StatusCreated || it.Token == "" {
		t.Fatalf("issuing an initial access token: %d", code)
	}
	register := func() (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, o.URL+"/oauth2/register", strings.NewReader(`{"redirect_uris":["https://rp.example/cb"],"client_name":"Dynamic RP","grant_types":["authorization_code"],"scope":"openid profile"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+it.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	status, body := register()
	if status != http.StatusCreated || body["client_id"] == nil || body["registration_access_token"] == nil || body["client_secret"] == nil {
		t.Fatalf("registration: %d %v", status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, body["registration_client_uri"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+body["registration_access_token"].(string))
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = got.Body.Close()
	if got.StatusCode != http.StatusOK {
		t.Fatalf("reading the registration: %d", got.StatusCode)
	}
	if again, _ := register(); again != http.StatusUnauthorized {
		t.Fatalf("the initial access token worked twice: %d", again)
	}
}
