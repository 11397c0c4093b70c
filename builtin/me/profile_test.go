package me

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
)

func TestApplyProfile(t *testing.T) {
	base := abi.User{ID: "u1", Username: "alice", Email: "alice@example.com", EmailVerified: true, Enabled: true,
		Attributes: map[string]any{"latch.failed_logins": float64(2), "locale": "en"}}
	for _, c := range []struct {
		name    string
		body    string
		code    fault.Code
		field   string
		changed []string
		check   func(abi.User) bool
	}{
		{name: "names", body: `{"display_name":"Alice L","given_name":"Alice"}`, changed: []string{"display_name", "given_name"},
			check: func(u abi.User) bool { return u.DisplayName == "Alice L" && u.GivenName == "Alice" }},
		{name: "new email is unverified", body: `{"email":"a@example.org"}`, changed: []string{"email"},
			check: func(u abi.User) bool { return u.Email == "a@example.org" && !u.EmailVerified }},
		{name: "same email stays verified", body: `{"email":"alice@example.com"}`,
			check: func(u abi.User) bool { return u.EmailVerified }},
		{name: "clear with null", body: `{"attributes":{"locale":null}}`, changed: []string{"attributes.locale"},
			check: func(u abi.User) bool {
				_, ok := u.Attributes["locale"]
				return !ok && u.Attributes["latch.failed_logins"] == float64(2)
			}},
		{name: "phone", body: `{"phone_number":"+15551234567"}`, changed: []string{"phone_number"}},
		{name: "birthdate", body: `{"attributes":{"birthdate":"1990-04-01"}}`, changed: []string{"attributes.birthdate"}},
		{name: "username", body: `{"username":"bob"}`, code: fault.CodeForbidden, field: "username"},
		{name: "enabled", body: `{"enabled":true}`, code: fault.CodeForbidden, field: "enabled"},
		{name: "locked", body: `{"locked":false}`, code: fault.CodeForbidden, field: "locked"},
		{name: "internal attribute", body: `{"attributes":{"latch.failed_logins":0}}`, code: fault.CodeForbidden, field: "attributes.latch.failed_logins"},
		{name: "forbidden beside allowed", body: `{"display_name":"x","roles":[]}`, code: fault.CodeForbidden, field: "roles"},
		{name: "unknown", body: `{"favourite":"x"}`, code: fault.CodeInvalidRequest, field: "favourite"},
		{name: "number", body: `{"display_name":1}`, code: fault.CodeInvalidRequest, field: "display_name"},
		{name: "control", body: `{"display_name":"a\u0000b"}`, code: fault.CodeInvalidRequest, field: "display_name"},
		{name: "padded", body: `{"family_name":" x"}`, code: fault.CodeInvalidRequest, field: "family_name"},
		{name: "email", body: `{"email":"Alice <a@example.com>"}`, code: fault.CodeInvalidRequest, field: "email"},
		{name: "url", body: `{"attributes":{"picture":"ftp://x/y"}}`, code: fault.CodeInvalidRequest, field: "attributes.picture"},
		{name: "locale", body: `{"attributes":{"locale":"not a tag"}}`, code: fault.CodeInvalidRequest, field: "attributes.locale"},
		{name: "attributes not an object", body: `{"attributes":[]}`, code: fault.CodeInvalidRequest, field: "attributes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body map[string]json.RawMessage
			if err := json.Unmarshal([]byte(c.body), &body); err != nil {
				t.Fatal(err)
			}
			u := base
			u.Attributes = map[string]any{"latch.failed_logins": float64(2), "locale": "en"}
			changed, err := applyProfile(body, &u)
			if c.code != "" {
				var f *fault.Error
				if !errors.As(err, &f) || f.Code != c.code || f.Field != c.field {
					t.Fatalf("got %v, want %s on %s", err, c.code, c.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(changed) != len(c.changed) {
				t.Fatalf("changed %v, want %v", changed, c.changed)
			}
			if c.check != nil && !c.check(u) {
				t.Fatalf("user after: %+v", u)
			}
			if u.Username != "alice" || !u.Enabled {
				t.Fatalf("a protected field changed: %+v", u)
			}
		})
	}
}

// FuzzApplyProfile: no body changes a protected field, and none panics.
func FuzzApplyProfile(f *testing.F) {
	for _, s := range []string{`{"display_name":"x"}`, `{"attributes":{"locale":"en-GB"}}`, `{"email":"a@b.c"}`, `{"username":"x"}`, `{"attributes":{"x":1}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var body map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &body) != nil {
			return
		}
		u := abi.User{ID: "u1", Username: "alice", Enabled: true, Attributes: map[string]any{"latch.failed_logins": float64(1)}}
		if _, err := applyProfile(body, &u); err != nil {
			var f *fault.Error
			if !errors.As(err, &f) || (f.Code != fault.CodeInvalidRequest && f.Code != fault.CodeForbidden) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		if u.ID != "u1" || u.Username != "alice" || !u.Enabled || u.Locked || u.Attributes["latch.failed_logins"] != float64(1) {
			t.Fatalf("a protected field changed: %+v", u)
		}
	})
}
