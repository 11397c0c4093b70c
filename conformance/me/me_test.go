// Package me_test drives the end-user API (/api/me) of a live latch serve
// with a plain HTTP client: access tokens come from a real login through
// the authorization code flow with PKCE, and the browser calls carry the
// SSO session cookie and the CSRF token as a web page would.
package me_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/conformance/internal/live"
)

const (
	alicePass = "alice-password-42"
	redirect  = "http://127.0.0.1:9/cb"
	secret    = "portal-secret-0123456789abcdefghijkl"
)

// browser is the suites' live.Browser with this suite's login and API
// calls.
type browser struct {
	*live.Browser
	t *testing.T
	// newPassword, when set, answers a login's "set a new password" page.
	newPassword string
}

func newBrowser(t *testing.T) *browser { return &browser{Browser: live.NewBrowser(t), t: t} }

type resp struct {
	status int
	header http.Header
	body   []byte
	url    string
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v\n%s", r.status, err, r.body)
	}
	return m
}

// do sends req as it is and returns the answer, following nothing.
func (b *browser) do(req *http.Request) resp {
	b.t.Helper()
	p := b.Do(req)
	return resp{status: p.Status, header: p.Header, body: []byte(p.Body), url: p.URL}
}

// login runs the authorization code flow with PKCE for client in the
// tenant at base (the server URL, or URL + /t/{tenant}), signing in as
// username, and returns the access token.
func (b *browser) login(base, client, clientSecret, scope, username, pw string) string {
	b.t.Helper()
	tok, _ := b.loginTokens(base, client, clientSecret, scope, username, pw)["access_token"].(string)
	return tok
}

// loginTokens is login returning the whole token response.
func (b *browser) loginTokens(base, client, clientSecret, scope, username, pw string) map[string]any {
	t := b.t
	t.Helper()
	verifier := "verifier-0123456789-0123456789-0123456789-abcdef"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect}, "scope": {scope},
		"state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	p := b.Get(base+"/oauth2/authorize?"+q.Encode(), redirect)
	for range 4 {
		if strings.HasPrefix(p.Location, redirect) {
			break
		}
		fill := map[string]string{"decision": "allow"}
		switch {
		case strings.Contains(p.Body, `name="password"`):
			fill = map[string]string{"username": username, "password": pw}
		case b.newPassword != "" && strings.Contains(p.Body, `name="new_password"`):
			fill = map[string]string{"new_password": b.newPassword, "confirm_password": b.newPassword}
		}
		p = b.Submit(p, fill, redirect)
	}
	cb, _ := url.Parse(p.Location)
	code := cb.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s\n%s", p, p.Body)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, clientSecret)
	tr := b.do(req)
	if tr.status != http.StatusOK {
		t.Fatalf("token request: %d %s", tr.status, tr.body)
	}
	return tr.json(t)
}

// call sends a request to the API at base+path with an optional bearer
// token and headers.
func (b *browser) call(method, u, token string, body any, headers ...string) resp {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, ok := body.(string)
		if !ok {
			bs, _ := json.Marshal(body)
			raw = string(bs)
		}
		rd = bytes.NewReader([]byte(raw))
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// wantError checks an error answer in the server's JSON error shape.
func wantError(t *testing.T, r resp, status int, code, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("want %d %s, got %d: %s", status, code, r.status, r.body)
	}
	m := r.json(t)
	if m["code"] != code || m["message"] == "" || m["request_id"] == "" {
		t.Fatalf("want error code %q with message and request_id, got %v", code, m)
	}
	if field != "" && m["field"] != field {
		t.Fatalf("want field %q, got %v", field, m)
	}
}

func setup(t *testing.T) *live.Server {
	s := live.Start(t)
	if code := s.Admin(http.MethodPost, "/users", map[string]any{
		"username": "alice", "password": alicePass, "email": "alice@example.com", "email_verified": true,
		"display_name": "Alice", "enabled": true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating alice: %d", code)
	}
	for _, c := range []map[string]any{
		{"client_id": "portal", "client_secret": secret, "name": "Account Portal", "first_party": true,
			"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"},
			"scopes": []string{"openid", "profile", "latch:me"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true},
		{"client_id": "reader", "client_secret": secret, "name": "Profile Reader",
			"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"},
			"scopes": []string{"openid", "profile", "email"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true},
	} {
		if code := s.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating client %v: %d", c["client_id"], code)
		}
	}
	return s
}

func TestMeWithAccessTokens(t *testing.T) {
	s := setup(t)
	api := s.URL + "/api/me"
	b := newBrowser(t)
	tok := b.login(s.URL, "portal", secret, "openid profile latch:me", "alice", alicePass)

	anon := newBrowser(t)
	r := anon.call("GET", api, "", nil)
	wantError(t, r, 401, "unauthenticated", "")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without a Bearer challenge: %v", r.header)
	}
	wantError(t, anon.call("GET", api, "not-a-token", nil), 401, "unauthenticated", "")

	r = anon.call("GET", api, tok, nil)
	if r.status != 200 {
		t.Fatalf("GET /api/me: %d %s", r.status, r.body)
	}
	p := r.json(t)
	if p["username"] != "alice" || p["email"] != "alice@example.com" || p["email_verified"] != true || r.header.Get("ETag") == "" {
		t.Fatalf("profile: %v %v", p, r.header)
	}
	if _, ok := p["attributes"].(map[string]any)["latch.failed_logins"]; ok {
		t.Fatal("internal attributes are shown")
	}

	// Edits.
	r = anon.call("PATCH", api, tok, map[string]any{"display_name": "Alice Liddell", "given_name": "Alice",
		"email": "alice@wonderland.example", "attributes": map[string]any{"locale": "en-GB", "website": "https://alice.example"}})
	if r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	p = r.json(t)
	if p["display_name"] != "Alice Liddell" || p["email"] != "alice@wonderland.example" || p["email_verified"] != false ||
		p["attributes"].(map[string]any)["locale"] != "en-GB" {
		t.Fatalf("after PATCH: %v", p)
	}
	var admin map[string]any
	s.Admin("GET", "/users/"+p["id"].(string), nil, &admin)
	if admin["display_name"] != "Alice Liddell" || admin["enabled"] != true {
		t.Fatalf("the store does not have the change: %v", admin)
	}
	for _, c := range []struct {
		body   string
		status int
		code   string
		field  string
	}{
		{`{"username":"mallory"}`, 403, "forbidden", "username"},
		{`{"enabled":false}`, 403, "forbidden", "enabled"},
		{`{"roles":["admin"]}`, 403, "forbidden", "roles"},
		{`{"groups":["admins"]}`, 403, "forbidden", "groups"},
		{`{"email_verified":true}`, 403, "forbidden", "email_verified"},
		{`{"attributes":{"latch.failed_logins":0}}`, 403, "forbidden", "attributes.latch.failed_logins"},
		{`{"attributes":{"department":"Board"}}`, 403, "forbidden", "attributes.department"},
		{`{"shoe_size":"42"}`, 400, "invalid_request", "shoe_size"},
		{`{"email":"not an address"}`, 400, "invalid_request", "email"},
		{`{"phone_number":"555"}`, 400, "invalid_request", "phone_number"},
		{`{"display_name":"` + strings.Repeat("x", 300) + `"}`, 400, "invalid_request", "display_name"},
		{`{"attributes":{"website":"javascript:alert(1)"}}`, 400, "invalid_request", "attributes.website"},
		{`{"display_name":`, 400, "invalid_request", ""},
		{`[1,2]`, 400, "invalid_request", ""},
	} {
		wantError(t, anon.call("PATCH", api, tok, c.body), c.status, c.code, c.field)
	}
	wantError(t, anon.call("PATCH", api, tok, `{"display_name":"X"}`, "If-Match", `W/"1"`), 412, "precondition_failed", "")
	s.Admin("GET", "/users/"+p["id"].(string), nil, &admin)
	if admin["username"] != "alice" || admin["display_name"] != "Alice Liddell" {
		t.Fatalf("a refused PATCH changed the user: %v", admin)
	}

	// A token without latch:me reads but does not write.
	rb := newBrowser(t)
	rtok := rb.login(s.URL, "reader", secret, "openid profile", "alice", alicePass)
	if r := anon.call("GET", api, rtok, nil); r.status != 200 {
		t.Fatalf("GET with profile scope: %d %s", r.status, r.body)
	}
	r = anon.call("PATCH", api, rtok, map[string]any{"display_name": "Mallory"})
	wantError(t, r, 403, "forbidden", "")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `insufficient_scope`) {
		t.Fatalf("no insufficient_scope challenge: %v", r.header)
	}
	// The reader asked for consent: it is listed and can be revoked.
	r = anon.call("GET", api+"/consents", tok, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"client_id":"reader"`) {
		t.Fatalf("consents: %d %s", r.status, r.body)
	}
	wantError(t, anon.call("DELETE", api+"/consents/reader", rtok, nil), 403, "forbidden", "")
	if r := anon.call("DELETE", api+"/consents/reader", tok, nil); r.status != 204 {
		t.Fatalf("revoking a consent: %d %s", r.status, r.body)
	}
	wantError(t, anon.call("DELETE", api+"/consents/reader", tok, nil), 404, "not_found", "")

	// A client credentials token names no user.
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"latch:admin"}}
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("latch-admin", live.AdminSecret)
	cc, _ := anon.do(req).json(t)["access_token"].(string)
	wantError(t, anon.call("GET", api, cc, nil), 403, "forbidden", "")

	// Lists.
	for _, path := range []string{"/sessions", "/mfa", "/links", "/consents"} {
		r := anon.call("GET", api+path, tok, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		if _, ok := r.json(t)["items"].([]any); !ok {
			t.Fatalf("GET %s: no items: %s", path, r.body)
		}
	}
	wantError(t, anon.call("DELETE", api+"/links/upstream/nobody", tok, nil), 404, "not_found", "")
	wantError(t, anon.call("DELETE", api+"/sessions/00000000-0000-0000-0000-000000000000", tok, nil), 404, "not_found", "")
	wantError(t, anon.call("GET", api+"/nothing-here", tok, nil), 404, "not_found", "")

	// Password change: the current password is required and checked.
	wantError(t, anon.call("POST", api+"/password", tok, map[string]any{"current_password": "wrong-password-1", "new_password": "a-new-password-1"}), 403, "forbidden", "current_password")
	wantError(t, anon.call("POST", api+"/password", tok, map[string]any{"current_password": alicePass, "new_password": "short"}), 400, "invalid_request", "new_password")
	wantError(t, anon.call("POST", api+"/password", tok, map[string]any{"new_password": "a-new-password-1"}), 400, "invalid_request", "current_password")
	r = anon.call("POST", api+"/password", tok, map[string]any{"current_password": alicePass, "new_password": "a-new-password-1"})
	if r.status != 200 {
		t.Fatalf("changing the password: %d %s", r.status, r.body)
	}
	if n, _ := r.json(t)["sessions_ended"].(float64); n < 2 {
		t.Fatalf("the other sessions did not end: %s", r.body)
	}
	// The token the change was made with is revoked with the others; the
	// new password signs in.
	wantError(t, anon.call("GET", api, tok, nil), 401, "unauthenticated", "")
	tok = newBrowser(t).login(s.URL, "portal", secret, "openid latch:me", "alice", "a-new-password-1")

	// Wrong current passwords count towards the lockout.
	for range 5 {
		anon.call("POST", api+"/password", tok, map[string]any{"current_password": "wrong-password-1", "new_password": "another-password-2"})
	}
	r = anon.call("POST", api+"/password", tok, map[string]any{"current_password": "a-new-password-1", "new_password": "another-password-2"})
	wantError(t, r, 403, "forbidden", "")
	if !strings.Contains(string(r.body), "locked") {
		t.Fatalf("want the lockout, got %s", r.body)
	}

	// Every change was audited with the user as the actor. Audit events
	// are written asynchronously, so the last ones may take a moment.
	wants := []string{"user.update/success", "user.password.change/success", "user.password.change/failure", "user.password.change/denied", "consent.revoke/success"}
	seen := map[string]bool{}
	audited := func() bool {
		var audit struct {
			Items []map[string]any `json:"items"`
		}
		s.Admin("GET", "/audit?actor=user:"+p["id"].(string)+"&limit=200", nil, &audit)
		for _, e := range audit.Items {
			seen[e["action"].(string)+"/"+e["outcome"].(string)] = true
		}
		for _, want := range wants {
			if !seen[want] {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(5 * time.Second); !audited(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("audit log lacks one of %v: %v", wants, seen)
		}
	}
}

func TestMeWithSessionCookie(t *testing.T) {
	s := setup(t)
	api := s.URL + "/api/me"
	b := newBrowser(t)
	b.login(s.URL, "portal", secret, "openid profile", "alice", alicePass)
	other := newBrowser(t)
	other.login(s.URL, "portal", secret, "openid profile", "alice", alicePass)

	r := b.call("GET", api, "", nil)
	if r.status != 200 || r.json(t)["username"] != "alice" {
		t.Fatalf("GET with the session cookie: %d %s", r.status, r.body)
	}
	// Changes need the CSRF token.
	wantError(t, b.call("PATCH", api, "", map[string]any{"display_name": "Forged"}), 403, "forbidden", "X-CSRF-Token")
	wantError(t, b.call("PATCH", api, "", map[string]any{"display_name": "Forged"}, "X-CSRF-Token", strings.Repeat("A", 43)), 403, "forbidden", "X-CSRF-Token")
	r = b.call("GET", api+"/csrf", "", nil)
	csrf, _ := r.json(t)["csrf_token"].(string)
	if r.status != 200 || csrf == "" {
		t.Fatalf("csrf: %d %s", r.status, r.body)
	}
	// The token of one browser does not work in another.
	wantError(t, other.call("PATCH", api, "", map[string]any{"display_name": "Forged"}, "X-CSRF-Token", csrf), 403, "forbidden", "X-CSRF-Token")
	// A foreign Origin is refused even with the token.
	wantError(t, b.call("PATCH", api, "", map[string]any{"display_name": "Forged"}, "X-CSRF-Token", csrf, "Origin", "https://evil.example"), 403, "forbidden", "")
	r = b.call("PATCH", api, "", map[string]any{"display_name": "Alice by cookie"}, "X-CSRF-Token", csrf, "Origin", s.URL)
	if r.status != 200 || r.json(t)["display_name"] != "Alice by cookie" {
		t.Fatalf("PATCH with cookie and CSRF: %d %s", r.status, r.body)
	}

	// Sessions: two, this one marked current; ending the others signs the
	// other browser out.
	r = b.call("GET", api+"/sessions", "", nil)
	var ss struct {
		Items []map[string]any `json:"items"`
	}
	_ = json.Unmarshal(r.body, &ss)
	current := 0
	for _, x := range ss.Items {
		if x["current"] == true {
			current++
		}
	}
	if len(ss.Items) != 2 || current != 1 {
		t.Fatalf("sessions: %s", r.body)
	}
	wantError(t, b.call("DELETE", api+"/sessions", "", nil), 403, "forbidden", "X-CSRF-Token")
	r = b.call("DELETE", api+"/sessions", "", nil, "X-CSRF-Token", csrf)
	if r.status != 200 || r.json(t)["sessions_ended"] != float64(1) {
		t.Fatalf("ending other sessions: %d %s", r.status, r.body)
	}
	wantError(t, other.call("GET", api, "", nil), 401, "unauthenticated", "")
	if r := b.call("GET", api, "", nil); r.status != 200 {
		t.Fatalf("the current session ended too: %d", r.status)
	}

	// A second-factor device can only go with the password.
	wantError(t, b.call("DELETE", api+"/mfa/authn.totp/totp", "", map[string]any{"current_password": "wrong-password-1"}, "X-CSRF-Token", csrf), 403, "forbidden", "current_password")
	wantError(t, b.call("DELETE", api+"/mfa/authn.totp/totp", "", map[string]any{"current_password": alicePass}, "X-CSRF-Token", csrf), 404, "not_found", "")
}

func TestMeInATenant(t *testing.T) {
	s := setup(t)
	if code := s.Admin("POST", "/tenants", map[string]any{"name": "acme", "display_name": "Acme", "enabled": true}, nil); code != 201 {
		t.Fatalf("creating tenant: %d", code)
	}
	if code := adminIn(t, s, "acme", "POST", "/users", map[string]any{"username": "wile", "password": "wile-password-1", "enabled": true}); code != 201 {
		t.Fatalf("creating wile: %d", code)
	}
	if code := adminIn(t, s, "acme", "POST", "/clients", map[string]any{"client_id": "portal", "client_secret": secret, "name": "Acme Portal", "first_party": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid", "latch:me"},
		"token_endpoint_auth_method": "client_secret_basic", "enabled": true}); code != 201 {
		t.Fatalf("creating acme's client: %d", code)
	}
	b := newBrowser(t)
	tok := b.login(s.URL+"/t/acme", "portal", secret, "openid latch:me", "wile", "wile-password-1")
	r := b.call("GET", s.URL+"/t/acme/api/me", tok, nil)
	if r.status != 200 || r.json(t)["username"] != "wile" {
		t.Fatalf("GET /t/acme/api/me: %d %s", r.status, r.body)
	}
	wileID, _ := r.json(t)["id"].(string)
	// Acme's token is not valid for the default tenant, nor the cookie.
	anon := newBrowser(t)
	wantError(t, anon.call("GET", s.URL+"/api/me", tok, nil), 401, "unauthenticated", "")
	wantError(t, b.call("GET", s.URL+"/api/me", "", nil), 401, "unauthenticated", "")
	wantError(t, anon.call("GET", s.URL+"/t/nope/api/me", tok, nil), 404, "not_found", "")

	// A disabled account opens nothing, by token or by cookie.
	if code := adminIn(t, s, "acme", "PATCH", "/users/"+wileID, map[string]any{"enabled": false}); code != 200 {
		t.Fatalf("disabling wile: %d", code)
	}
	wantError(t, anon.call("GET", s.URL+"/t/acme/api/me/sessions", tok, nil), 403, "forbidden", "")
	wantError(t, b.call("GET", s.URL+"/t/acme/api/me", "", nil), 403, "forbidden", "")
}

// adminIn sends body to the admin API of a tenant and returns the status.
func adminIn(t *testing.T, s *live.Server, tenant, method, path string, body any) int {
	t.Helper()
	bs, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.URL+"/t/"+tenant+"/api/admin/v1"+path, bytes.NewReader(bs))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("latch-admin", live.AdminSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode >= 300 {
		b, _ := io.ReadAll(res.Body)
		t.Logf("%s: %s", path, b)
	}
	return res.StatusCode
}
