package me_test

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/conformance/internal/live"
)

// adminError calls the admin API and checks an error answer in its JSON
// shape: the code, the field, a message and the request id.
func adminError(t *testing.T, s *live.Server, method, path string, body any, status int, code, field string) map[string]any {
	t.Helper()
	var got map[string]any
	if c := s.Admin(method, path, body, &got); c != status {
		t.Fatalf("%s %s: want %d, got %d %v", method, path, status, c, got)
	}
	if got["code"] != code || got["field"] != field || got["message"] == "" || got["request_id"] == "" {
		t.Fatalf("%s %s: want code %q on field %q with message and request_id, got %v", method, path, code, field, got)
	}
	return got
}

// setSettings replaces the default tenant's settings with its own plus
// extra.
func setSettings(t *testing.T, s *live.Server, extra map[string]any) {
	t.Helper()
	var tn struct {
		Settings map[string]any `json:"settings"`
	}
	if c := s.Admin("GET", "/tenants/default", nil, &tn); c != 200 {
		t.Fatalf("reading the default tenant: %d", c)
	}
	settings := map[string]any{}
	maps.Copy(settings, tn.Settings)
	maps.Copy(settings, extra)
	if c := s.Admin("PATCH", "/tenants/default", map[string]any{"settings": settings}, nil); c != 200 {
		t.Fatalf("setting %v: %d", extra, c)
	}
}

// TestTenantSettingsChecked: the admin API refuses tenant settings a
// password change could not use later, naming the setting.
func TestTenantSettingsChecked(t *testing.T) {
	s := live.Start(t)
	badPattern := map[string]any{"password_policy": map[string]any{"pattern": "([a-z"}}
	m := adminError(t, s, "PATCH", "/tenants/default", map[string]any{"settings": badPattern}, 400, "invalid_request", "settings.password_policy")
	if msg, _ := m["message"].(string); !strings.Contains(msg, "pattern") {
		t.Fatalf("the message does not name the pattern: %v", m)
	}
	adminError(t, s, "POST", "/tenants", map[string]any{"name": "acme", "settings": badPattern}, 400, "invalid_request", "settings.password_policy")
	adminError(t, s, "PATCH", "/tenants/default", map[string]any{"settings": map[string]any{"password_policy": map[string]any{"min_length": -1}}},
		400, "invalid_request", "settings.password_policy")
	adminError(t, s, "PATCH", "/tenants/default", map[string]any{"settings": map[string]any{"password_policy": map[string]any{"minimum_length": 12}}},
		400, "invalid_request", "settings.password_policy")
	adminError(t, s, "PATCH", "/tenants/default", map[string]any{"settings": map[string]any{"self_service": map[string]any{"signup": "yes"}}},
		400, "invalid_request", "settings.self_service")
	if c := s.Admin("GET", "/tenants/acme", nil, nil); c != 404 {
		t.Fatalf("a refused tenant was stored: %d", c)
	}
	var tn struct {
		Settings map[string]any `json:"settings"`
	}
	s.Admin("GET", "/tenants/default", nil, &tn)
	if _, ok := tn.Settings["password_policy"]; ok {
		t.Fatalf("a refused policy was stored: %v", tn.Settings)
	}
	// Valid settings are stored.
	good := map[string]any{"password_policy": map[string]any{"min_length": 12, "pattern": "^[^ ]+$", "pattern_message": "No spaces."}}
	if c := s.Admin("POST", "/tenants", map[string]any{"name": "acme", "settings": good}, nil); c != 201 {
		t.Fatalf("creating a tenant with a valid policy: %d", c)
	}
	setSettings(t, s, good)
}

// TestMePasswordPolicy: a password change through /api/me obeys the
// tenant's password policy and its history.
func TestMePasswordPolicy(t *testing.T) {
	s := setup(t)
	api := s.URL + "/api/me"
	setSettings(t, s, map[string]any{"password_policy": map[string]any{
		"min_length": 12, "require_upper": true, "require_digit": true, "history": 3,
	}})
	anon := newBrowser(t)
	tok := newBrowser(t).login(s.URL, "portal", secret, "openid latch:me", "alice", alicePass)

	// Each rule broken is named; nothing changes.
	r := anon.call("POST", api+"/password", tok, map[string]any{"current_password": alicePass, "new_password": "all-lowercase"})
	wantError(t, r, 400, "invalid_request", "new_password")
	msg, _ := r.json(t)["message"].(string)
	if !strings.Contains(msg, "uppercase") || !strings.Contains(msg, "digit") {
		t.Fatalf("the refusal does not name the rules broken: %s", msg)
	}
	r = anon.call("POST", api+"/password", tok, map[string]any{"current_password": alicePass, "new_password": "Short-Pw-1"})
	wantError(t, r, 400, "invalid_request", "new_password")
	if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, "12 characters") {
		t.Fatalf("the refusal does not name the minimum length: %s", msg)
	}
	// A wrong current password is still refused first, and the old
	// password still works.
	wantError(t, anon.call("POST", api+"/password", tok, map[string]any{"current_password": "wrong-password-1", "new_password": "Good-Password-1"}), 403, "forbidden", "current_password")
	tok = newBrowser(t).login(s.URL, "portal", secret, "openid latch:me", "alice", alicePass)

	// A password the policy accepts is set.
	if r := anon.call("POST", api+"/password", tok, map[string]any{"current_password": alicePass, "new_password": "Good-Password-1"}); r.status != 200 {
		t.Fatalf("changing to a good password: %d %s", r.status, r.body)
	}
	// The history: the password before is refused again, as the current
	// one is by the API itself.
	tok = newBrowser(t).login(s.URL, "portal", secret, "openid latch:me", "alice", "Good-Password-1")
	r = anon.call("POST", api+"/password", tok, map[string]any{"current_password": "Good-Password-1", "new_password": alicePass + "-X"})
	if r.status != 200 {
		t.Fatalf("changing to another good password: %d %s", r.status, r.body)
	}
	tok = newBrowser(t).login(s.URL, "portal", secret, "openid latch:me", "alice", alicePass+"-X")
	r = anon.call("POST", api+"/password", tok, map[string]any{"current_password": alicePass + "-X", "new_password": "Good-Password-1"})
	wantError(t, r, 400, "invalid_request", "new_password")
	if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, "last 3 passwords") {
		t.Fatalf("the refusal does not name the history: %s", msg)
	}
	// The refusals were audited as denied (the audit trail is written
	// asynchronously, so the last refusal may take a moment to show).
	live.Eventually(t, 10*time.Second, "three refused passwords audited as denied", func() bool {
		var audit struct {
			Items []map[string]any `json:"items"`
		}
		s.Admin("GET", "/audit?action=user.password.change&limit=200", nil, &audit)
		denied := 0
		for _, e := range audit.Items {
			if e["outcome"] == "denied" {
				denied++
			}
		}
		return denied >= 3
	})
}

// refresh redeems a refresh token of client and returns the answer.
func refresh(b *browser, base, client, rt string) resp {
	b.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	return b.do(req)
}

func wantInvalidGrant(t *testing.T, r resp) {
	t.Helper()
	if r.status != 400 || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("want 400 invalid_grant, got %d %s", r.status, r.body)
	}
}

// TestMeRevokesTokens: revoking a consent revokes that client's refresh
// and access tokens; changing the password revokes every token the user
// was issued.
func TestMeRevokesTokens(t *testing.T) {
	s := setup(t)
	api := s.URL + "/api/me"
	for _, c := range []map[string]any{
		{"client_id": "app", "client_secret": secret, "name": "Offline App", "first_party": true,
			"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code", "refresh_token"},
			"scopes": []string{"openid", "profile", "latch:me"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true},
		{"client_id": "partner", "client_secret": secret, "name": "Partner",
			"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code", "refresh_token"},
			"scopes": []string{"openid", "profile"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true},
	} {
		if code := s.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating client %v: %d", c["client_id"], code)
		}
	}
	anon := newBrowser(t)
	b := newBrowser(t)
	partner := b.loginTokens(s.URL, "partner", secret, "openid profile", "alice", alicePass)
	app := b.loginTokens(s.URL, "app", secret, "openid profile latch:me", "alice", alicePass)
	partnerRT, _ := partner["refresh_token"].(string)
	partnerAT, _ := partner["access_token"].(string)
	appRT, _ := app["refresh_token"].(string)
	appAT, _ := app["access_token"].(string)
	if partnerRT == "" || appRT == "" {
		t.Fatalf("no refresh tokens: %v %v", partner, app)
	}
	if r := anon.call("GET", api, partnerAT, nil); r.status != 200 {
		t.Fatalf("the partner's access token: %d %s", r.status, r.body)
	}

	// Revoking the partner's consent ends its tokens, and only its.
	if r := anon.call("DELETE", api+"/consents/partner", appAT, nil); r.status != 204 {
		t.Fatalf("revoking the partner's consent: %d %s", r.status, r.body)
	}
	wantInvalidGrant(t, refresh(anon, s.URL, "partner", partnerRT))
	wantError(t, anon.call("GET", api, partnerAT, nil), 401, "unauthenticated", "")
	if r := anon.call("GET", api, appAT, nil); r.status != 200 {
		t.Fatalf("the app's access token after the partner's consent was revoked: %d %s", r.status, r.body)
	}
	r := refresh(anon, s.URL, "app", appRT)
	if r.status != 200 {
		t.Fatalf("the app's refresh token after the partner's consent was revoked: %d %s", r.status, r.body)
	}
	appRT, _ = r.json(t)["refresh_token"].(string)
	appAT, _ = r.json(t)["access_token"].(string)

	// A new grant to the partner, then a password change: every token of
	// the user ends, the new password signs in again.
	partner = newBrowser(t).loginTokens(s.URL, "partner", secret, "openid profile", "alice", alicePass)
	partnerRT, _ = partner["refresh_token"].(string)
	if r := anon.call("POST", api+"/password", appAT, map[string]any{"current_password": alicePass, "new_password": "a-new-password-1"}); r.status != 200 {
		t.Fatalf("changing the password: %d %s", r.status, r.body)
	}
	wantInvalidGrant(t, refresh(anon, s.URL, "app", appRT))
	wantInvalidGrant(t, refresh(anon, s.URL, "partner", partnerRT))
	wantError(t, anon.call("GET", api, appAT, nil), 401, "unauthenticated", "")
	fresh := newBrowser(t).loginTokens(s.URL, "app", secret, "openid latch:me", "alice", "a-new-password-1")
	if rt, _ := fresh["refresh_token"].(string); refresh(anon, s.URL, "app", rt).status != 200 {
		t.Fatal("a refresh token issued after the change does not work")
	}

	var audit struct {
		Items []map[string]any `json:"items"`
	}
	live.Eventually(t, 10*time.Second, "the consent.revoke audit event", func() bool {
		s.Admin("GET", "/audit?action=consent.revoke&limit=50", nil, &audit)
		return len(audit.Items) > 0
	})
	if len(audit.Items) != 1 {
		t.Fatalf("consent.revoke audit: %v", audit.Items)
	}
	if d, _ := audit.Items[0]["detail"].(map[string]any); d["tokens_revoked"] == float64(0) || d["tokens_revoked"] == nil {
		t.Fatalf("the audit does not count the revoked tokens: %v", audit.Items[0])
	}
}

// TestForcedResetRevokesTokens: the new password a login requires after
// an administrator forced a reset revokes the refresh tokens issued before.
func TestForcedResetRevokesTokens(t *testing.T) {
	s := setup(t)
	if code := s.Admin(http.MethodPost, "/clients", map[string]any{"client_id": "app", "client_secret": secret, "name": "Offline App", "first_party": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code", "refresh_token"},
		"scopes": []string{"openid", "profile"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}
	anon := newBrowser(t)
	old, _ := newBrowser(t).loginTokens(s.URL, "app", secret, "openid profile", "alice", alicePass)["refresh_token"].(string)
	var users struct {
		Items []map[string]any `json:"items"`
	}
	s.Admin("GET", "/users?username=alice", nil, &users)
	var id string
	for _, u := range users.Items {
		if u["username"] == "alice" {
			id, _ = u["id"].(string)
		}
	}
	if code := s.Admin("POST", "/users/"+id+"/force-password-reset", nil, nil); code != 200 {
		t.Fatalf("forcing a reset: %d", code)
	}
	b := newBrowser(t)
	b.newPassword = "a-new-password-1"
	fresh, _ := b.loginTokens(s.URL, "app", secret, "openid profile", "alice", alicePass)["refresh_token"].(string)
	wantInvalidGrant(t, refresh(anon, s.URL, "app", old))
	if r := refresh(anon, s.URL, "app", fresh); r.status != 200 {
		t.Fatalf("the refresh token of the login that set the password: %d %s", r.status, r.body)
	}
}
