package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// TestSuspendUser suspends a user with a reason and an end, checks what
// the user JSON shows, that the user's sessions ended and tokens were
// revoked, that the reserved attributes cannot be written through PATCH
// and survive an attribute replacement, and that lifting the suspension
// restores the enabled state.
func TestSuspendUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.call("POST", "/api/admin/v1/users", map[string]any{"username": "sam", "password": "correct horse battery"})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	if got := r.json(t)["state"]; got != "enabled" {
		t.Fatalf("state of a new user %v", got)
	}
	now := time.Now()
	if _, err := e.store.CreateSession(ctx, store.Session{ID: "sess-1", TenantID: e.tenant.ID, UserID: id, AuthTime: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"refresh", "access"} {
		if err := e.store.CreateToken(ctx, store.Token{Kind: kind, Key: kind + "-1", TenantID: e.tenant.ID, RequestID: "req-1", ClientID: "app", Subject: id, Active: true, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}

	until := now.Add(48 * time.Hour).UTC().Truncate(time.Second)
	r = e.call("POST", "/api/admin/v1/users/"+id+"/suspend", map[string]any{"reason": "investigating abuse", "until": until})
	if r.status != 200 {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	u := r.json(t)
	if u["state"] != "suspended" || u["suspension_reason"] != "investigating abuse" || u["suspended_until"] != until.Format(time.RFC3339) || u["enabled"] != true {
		t.Fatalf("suspended user JSON: %s", r.body)
	}
	if strings.Contains(string(r.body), store.AttrSuspendedAt) {
		t.Fatalf("reserved attributes shown among the attributes: %s", r.body)
	}
	if ss, err := e.store.ListUserSessions(ctx, e.tenant.ID, id); err != nil || len(ss) != 0 {
		t.Fatalf("sessions after suspension: %v %v", ss, err)
	}
	for _, kind := range []string{"refresh", "access"} {
		tok, err := e.store.GetToken(ctx, e.tenant.ID, kind, kind+"-1")
		if err != nil || tok.Active {
			t.Fatalf("%s token after suspension: active=%v err=%v", kind, tok.Active, err)
		}
	}
	if r = e.call("GET", "/api/admin/v1/users/"+id, nil); r.json(t)["state"] != "suspended" {
		t.Fatalf("get suspended user: %s", r.body)
	}

	// The reserved attributes are the suspend route's alone.
	r = e.call("PATCH", "/api/admin/v1/users/"+id, map[string]any{"attributes": map[string]any{store.AttrSuspendedUntil: "2000-01-01T00:00:00Z"}})
	if r.status != 400 || !strings.Contains(string(r.body), "reserved") {
		t.Fatalf("writing a reserved attribute: %d %s", r.status, r.body)
	}
	r = e.call("PATCH", "/api/admin/v1/users/"+id, map[string]any{"attributes": map[string]any{"department": "ops"}})
	if r.status != 200 || r.json(t)["state"] != "suspended" {
		t.Fatalf("replacing attributes lifted the suspension: %d %s", r.status, r.body)
	}

	r = e.call("DELETE", "/api/admin/v1/users/"+id+"/suspend", nil)
	if r.status != 200 {
		t.Fatalf("unsuspend: %d %s", r.status, r.body)
	}
	u = r.json(t)
	if _, ok := u["suspension_reason"]; ok || u["state"] != "enabled" || u["attributes"].(map[string]any)["department"] != "ops" {
		t.Fatalf("unsuspended user JSON: %s", r.body)
	}
	stored, err := e.store.GetUser(ctx, e.tenant.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := store.SuspensionOf(stored); ok {
		t.Fatalf("suspension attributes left behind: %v", stored.Attributes)
	}

	// Without an end the suspension lasts; one whose end has passed shows
	// the user enabled again.
	if r = e.call("POST", "/api/admin/v1/users/"+id+"/suspend", map[string]any{"reason": ""}); r.status != 200 || r.json(t)["state"] != "suspended" {
		t.Fatalf("open-ended suspension: %d %s", r.status, r.body)
	}
	if _, ok := r.json(t)["suspended_until"]; ok {
		t.Fatalf("open-ended suspension shows an end: %s", r.body)
	}
	if r = e.call("POST", "/api/admin/v1/users/"+id+"/suspend", map[string]any{"until": now.Add(-time.Hour)}); r.status != 200 || r.json(t)["state"] != "enabled" {
		t.Fatalf("suspension ended in the past: %d %s", r.status, r.body)
	}

	want := "user.create:success,user.suspend:success,user.update:success,user.unsuspend:success,user.suspend:success,user.suspend:success"
	if got := strings.Join(e.audit.actions(), ","); got != want {
		t.Errorf("audit %s, want %s", got, want)
	}
}

// TestSuspendBadInput refuses malformed suspensions and unknown users
// with 4xx errors.
func TestSuspendBadInput(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/api/admin/v1/users", map[string]any{"username": "sam"})
	id := r.json(t)["id"].(string)
	for _, tc := range []struct {
		path string
		body any
		want int
	}{
		{"/api/admin/v1/users/" + id + "/suspend", `{"until":"tomorrow"}`, 400},
		{"/api/admin/v1/users/" + id + "/suspend", `{"reason":` + `"` + strings.Repeat("x", 5000) + `"}`, 400},
		{"/api/admin/v1/users/" + id + "/suspend", `{"reason":"x","extra":1}`, 400},
		{"/api/admin/v1/users/" + id + "/suspend", `[1]`, 400},
		{"/api/admin/v1/users/no-such-user/suspend", map[string]any{"reason": "x"}, 404},
	} {
		if r := e.call("POST", tc.path, tc.body); r.status != tc.want {
			t.Errorf("POST %s %v: %d %s, want %d", tc.path, tc.body, r.status, r.body, tc.want)
		}
	}
	if r := e.call("DELETE", "/api/admin/v1/users/no-such-user/suspend", nil); r.status != 404 {
		t.Errorf("unsuspend unknown user: %d %s", r.status, r.body)
	}
}
