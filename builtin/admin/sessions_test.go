package admin_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// TestSessions lists and ends a user's SSO sessions through the API.
func TestSessions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	u, err := e.store.CreateUser(ctx, store.User{TenantID: e.tenant.ID, Username: "sess-user", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var ids []string
	for _, id := range []string{"s-1", "s-2", "s-3"} {
		s, err := e.store.CreateSession(ctx, store.Session{ID: id, TenantID: e.tenant.ID, UserID: u.ID, AuthTime: now, AMR: []string{"pwd"},
			IP: "192.0.2.1", Data: map[string]any{"secret_sha256": "never-shown"}, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	r := e.call(http.MethodGet, "/api/admin/v1/users/"+u.ID+"/sessions", nil)
	if r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	items, _ := r.json(t)["items"].([]any)
	if len(items) != 3 {
		t.Fatalf("list: %s", r.body)
	}
	for _, it := range items {
		m := it.(map[string]any)
		if m["user_id"] != u.ID || m["ip"] != "192.0.2.1" || m["secret_sha256"] != nil {
			t.Errorf("session: %v", m)
		}
	}
	if r := e.call(http.MethodGet, "/api/admin/v1/sessions/"+ids[0], nil); r.status != http.StatusOK || r.json(t)["id"] != ids[0] {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := e.call(http.MethodDelete, "/api/admin/v1/sessions/"+ids[0], nil); r.status != http.StatusNoContent {
		t.Fatalf("delete one: %d %s", r.status, r.body)
	}
	if r := e.call(http.MethodGet, "/api/admin/v1/sessions/"+ids[0], nil); r.status != http.StatusNotFound {
		t.Fatalf("ended session: %d", r.status)
	}
	if r := e.call(http.MethodDelete, "/api/admin/v1/users/"+u.ID+"/sessions", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete all: %d %s", r.status, r.body)
	}
	if left, _ := e.store.ListUserSessions(ctx, e.tenant.ID, u.ID); len(left) != 0 {
		t.Fatalf("%d sessions left", len(left))
	}
	if r := e.call(http.MethodGet, "/api/admin/v1/users/nobody/sessions", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown user: %d", r.status)
	}
	if !slices.Contains(e.audit.actions(), "session.terminate:success") {
		t.Errorf("audit: %v", e.audit.actions())
	}
}

// TestAdaptiveTemplates lists the ready-made scripts; try-it without an
// engine is unsupported, not a 500.
func TestAdaptiveTemplates(t *testing.T) {
	e := newEnv(t)
	r := e.call(http.MethodGet, "/api/admin/v1/adaptive/templates", nil)
	if items, _ := r.json(t)["items"].([]any); r.status != http.StatusOK || len(items) < 5 {
		t.Fatalf("templates: %d %s", r.status, r.body)
	}
	r = e.call(http.MethodPost, "/api/admin/v1/adaptive/try-it", map[string]any{"script": "var onLoginRequest = function (c) {};"})
	if r.status >= 500 && r.status != http.StatusNotImplemented {
		t.Fatalf("try-it without engine: %d %s", r.status, r.body)
	}
}

// TestClientSettingsChecked refuses protocol settings that a front door
// could not use, when they are written.
func TestClientSettingsChecked(t *testing.T) {
	e := newEnv(t)
	for name, settings := range map[string]map[string]any{
		"flow without options": {"authentication": map[string]any{"steps": []any{map[string]any{"options": []string{}}}}},
		"flow unknown field":   {"authentication": map[string]any{"stepz": []any{}}},
		"saml without acs":     {"saml": map[string]any{"entity_id": "bad-sp"}},
	} {
		r := e.call(http.MethodPost, "/api/admin/v1/clients", map[string]any{"client_id": "bad-sp", "name": name, "settings": settings, "enabled": true})
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	r := e.call(http.MethodPost, "/api/admin/v1/clients", map[string]any{"client_id": "good-app", "enabled": true,
		"settings": map[string]any{"authentication": map[string]any{"steps": []any{map[string]any{"options": []string{"password"}}}}}})
	if r.status != http.StatusCreated {
		t.Fatalf("valid flow: %d %s", r.status, r.body)
	}
}

// TestPrepareThenRotate publishes a key before it signs: prepare adds it to
// the JWK Set, and the next rotation activates that same key.
func TestPrepareThenRotate(t *testing.T) {
	e := newEnv(t)
	r := e.call(http.MethodPost, "/api/admin/v1/keys/prepare", map[string]any{"algorithm": "ES256"})
	if r.status != http.StatusOK {
		t.Fatalf("prepare: %d %s", r.status, r.body)
	}
	kid, _ := r.json(t)["kid"].(string)
	set := e.call(http.MethodGet, "/api/admin/v1/keys", nil)
	if !strings.Contains(string(set.body), kid) {
		t.Fatalf("prepared key %s is not published: %s", kid, set.body)
	}
	r = e.call(http.MethodPost, "/api/admin/v1/keys/rotate", map[string]any{"algorithm": "ES256"})
	if got, _ := r.json(t)["kid"].(string); r.status != http.StatusOK || got != kid {
		t.Fatalf("rotate activated %q, want the prepared %q", got, kid)
	}
	if r := e.call(http.MethodPost, "/api/admin/v1/keys/prepare", map[string]any{"algorithm": "HS256"}); r.status != http.StatusBadRequest {
		t.Fatalf("HS256: %d", r.status)
	}
}
