package oauth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/builtin/oauth"
)

// registration sends a JSON request with a bearer token and returns the
// answer.
func (e *env) registration(method, u, token string, body any) response {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req)
}

func TestDynamicRegistration(t *testing.T) {
	e := newEnv(t)
	regURL := e.base + oauth.PathRegister
	iat := func() string {
		tok, exp, err := e.p.IssueInitialAccessToken(e.ctx(), e.def.ID, time.Hour)
		if err != nil || time.Until(exp) <= 0 {
			t.Fatal(err)
		}
		return tok
	}

	t.Run("register, use, manage, delete", func(t *testing.T) {
		token := iat()
		r := e.registration(http.MethodPost, regURL, token, map[string]any{
			"client_name": "Robot", "grant_types": []string{"client_credentials"}, "scope": "openid profile",
			"token_endpoint_auth_method": "client_secret_post",
		})
		if r.status != http.StatusCreated {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
		m := r.json(t)
		id, sec, rat, uri := m["client_id"].(string), m["client_secret"].(string), m["registration_access_token"].(string), m["registration_client_uri"].(string)
		if id == "" || len(sec) < 40 || rat == "" || uri != regURL+"/"+url.PathEscape(id) || m["client_secret_expires_at"] != 0.0 {
			t.Fatalf("registration response: %s", r.body)
		}
		// The initial access token is used once.
		if r := e.registration(http.MethodPost, regURL, token, map[string]any{"grant_types": []string{"client_credentials"}}); r.status != http.StatusUnauthorized || r.json(t)["error"] != "invalid_token" {
			t.Fatalf("reused initial access token: %d %s", r.status, r.body)
		}
		// The new client gets tokens with x/oauth2.
		tok := e.fetch("", id, sec, oauth2.AuthStyleInParams, nil, "profile")
		if tok.AccessToken == "" {
			t.Fatal("no token")
		}
		// Read, update, delete (RFC 7592).
		if r := e.registration(http.MethodGet, uri, rat, nil); r.status != 200 || r.json(t)["client_name"] != "Robot" || r.json(t)["client_secret"] != nil {
			t.Fatalf("read: %d %s", r.status, r.body)
		}
		if r := e.registration(http.MethodGet, uri, "wrong", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("read with a wrong token: %d", r.status)
		}
		if r := e.registration(http.MethodGet, regURL+"/svc-basic", rat, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("read another client: %d", r.status)
		}
		r = e.registration(http.MethodPut, uri, rat, map[string]any{
			"client_id": id, "client_name": "Robot 2", "grant_types": []string{"client_credentials"}, "scope": "openid",
			"token_endpoint_auth_method": "client_secret_post",
		})
		if r.status != 200 || r.json(t)["client_name"] != "Robot 2" || r.json(t)["scope"] != "openid" {
			t.Fatalf("update: %d %s", r.status, r.body)
		}
		if r := e.registration(http.MethodDelete, uri, rat, nil); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		cfg := e.ccConfig("", id, sec, oauth2.AuthStyleInParams)
		if _, err := cfg.Token(e.ctx()); err == nil {
			t.Fatal("a deleted client still gets tokens")
		}
		if r := e.registration(http.MethodGet, uri, rat, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("read after delete: %d", r.status)
		}
	})

	t.Run("public client", func(t *testing.T) {
		r := e.registration(http.MethodPost, regURL, iat(), map[string]any{
			"redirect_uris": []string{"http://127.0.0.1:8080/cb", "com.example.app:/cb"}, "token_endpoint_auth_method": "none",
		})
		m := r.json(t)
		if r.status != http.StatusCreated || m["client_secret"] != nil || m["grant_types"].([]any)[0] != "authorization_code" || m["response_types"].([]any)[0] != "code" {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
	})

	t.Run("key-authenticated client gets no secret", func(t *testing.T) {
		key := newClientKey(t, jose.ES256, "k1")
		r := e.registration(http.MethodPost, regURL, iat(), map[string]any{
			"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt", "jwks": key.jwks(t),
		})
		m := r.json(t)
		if r.status != http.StatusCreated || m["client_secret"] != nil || m["client_secret_expires_at"] != nil {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
		// It cannot later move to a method that needs the secret it never got.
		r = e.registration(http.MethodPut, m["registration_client_uri"].(string), m["registration_access_token"].(string), map[string]any{
			"client_id": m["client_id"], "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_basic",
		})
		if r.status != http.StatusBadRequest || r.json(t)["error"] != "invalid_client_metadata" {
			t.Fatalf("switch to client_secret_basic: %d %s", r.status, r.body)
		}
	})

	for _, tc := range []struct {
		name   string
		token  string
		body   any
		status int
		code   string
	}{
		{"no token", "", map[string]any{}, 401, "invalid_token"},
		{"unknown token", "nope", map[string]any{}, 401, "invalid_token"},
		{"admin scope", iat(), map[string]any{"grant_types": []string{"client_credentials"}, "scope": "latch:admin"}, 400, "invalid_client_metadata"},
		{"http redirect", iat(), map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, 400, "invalid_redirect_uri"},
		{"fragment in redirect", iat(), map[string]any{"redirect_uris": []string{"https://app.example/cb#x"}}, 400, "invalid_redirect_uri"},
		{"code without redirect", iat(), map[string]any{}, 400, "invalid_redirect_uri"},
		{"unknown grant", iat(), map[string]any{"grant_types": []string{"password"}}, 400, "invalid_client_metadata"},
		{"implicit", iat(), map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "response_types": []string{"token"}}, 400, "invalid_client_metadata"},
		{"public client credentials", iat(), map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "none"}, 400, "invalid_client_metadata"},
		{"private_key_jwt without keys", iat(), map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt"}, 400, "invalid_client_metadata"},
		{"http jwks_uri", iat(), map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://keys.example/jwks"}, 400, "invalid_client_metadata"},
		{"alg none", iat(), map[string]any{"grant_types": []string{"client_credentials"}, "request_object_signing_alg": "none"}, 400, "invalid_client_metadata"},
		{"chosen client_id", iat(), map[string]any{"client_id": "mine", "grant_types": []string{"client_credentials"}}, 400, "invalid_client_metadata"},
		{"not JSON", iat(), "{", 400, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if s, ok := tc.body.(string); ok {
				req, _ := http.NewRequest(http.MethodPost, regURL, strings.NewReader(s))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tc.token)
				r = e.do(req)
			} else {
				r = e.registration(http.MethodPost, regURL, tc.token, tc.body)
			}
			if r.status != tc.status || r.json(t)["error"] != tc.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
}

// FuzzRegistration posts arbitrary client metadata with a valid initial
// access token: the answer is 201 or an RFC 7591 error, never a 5xx.
func FuzzRegistration(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["https://app.example/cb"]}`,
		`{"grant_types":["client_credentials"],"scope":"openid latch:admin"}`,
		`{"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"EC"}]},"grant_types":["client_credentials"]}`,
		`{"redirect_uris":["javascript:alert(1)"],"post_logout_redirect_uris":[1]}`,
		`[]`, `null`, `{"client_name":"` + strings.Repeat("x", 300) + `"}`,
	} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		tok, _, err := e.p.IssueInitialAccessToken(e.ctx(), e.def.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, e.base+oauth.PathRegister, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		r := doWith(t, e.http, req)
		if r.status >= 500 || (r.status != http.StatusCreated && r.status != http.StatusBadRequest) {
			t.Fatalf("register %q: %d %s", body, r.status, r.body)
		}
	})
}
