package selfservice

import (
	"context"
	"errors"
	"testing"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
)

// revoker records the users whose tokens it was asked to revoke.
type revoker struct {
	calls []string
	err   error
}

func (r *revoker) RevokeUserTokens(_ context.Context, tenantID, userID, clientID string) (int, error) {
	r.calls = append(r.calls, tenantID+"/"+userID+"/"+clientID)
	return 2, r.err
}

// TestSetPasswordRevokesTokens: a password set with revoke (recovery, the
// change a login requires) ends the sessions and revokes every token of
// the user; one set without it revokes nothing.
func TestSetPasswordRevokesTokens(t *testing.T) {
	s, st, tn := newService(t, nil)
	r := &revoker{}
	s.UseTokens(r)
	u, err := st.CreateUser(t.Context(), store.User{TenantID: tn.ID, Username: "ann", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(t.Context(), tn.ID, u.ID, "first-pass-1", false); err != nil || len(r.calls) != 0 {
		t.Fatalf("without revoke: %v, revoked %v", err, r.calls)
	}
	if err := s.SetPassword(t.Context(), tn.ID, u.ID, "second-pass-2", true); err != nil {
		t.Fatal(err)
	}
	if want := tn.ID + "/" + u.ID + "/"; len(r.calls) != 1 || r.calls[0] != want {
		t.Fatalf("with revoke: revoked %v, want [%s]", r.calls, want)
	}
	r.err = errors.New("store down")
	if err := s.SetPassword(t.Context(), tn.ID, u.ID, "third-pass-3", true); err == nil {
		t.Fatal("a failed revocation was not reported")
	}
}

// TestInvalidStoredPolicy: a policy stored invalid refuses passwords as an
// invalid request that says so, never an internal error.
func TestInvalidStoredPolicy(t *testing.T) {
	s, st, tn := newService(t, map[string]any{"password_policy": map[string]any{"pattern": "([a-z"}})
	u, err := st.CreateUser(t.Context(), store.User{TenantID: tn.ID, Username: "ann", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"SetPassword":   s.SetPassword(t.Context(), tn.ID, u.ID, "good-pass-1", true),
		"CheckPassword": s.CheckPassword(t.Context(), tn.ID, u, "good-pass-1"),
	} {
		f := fault.From(err)
		if f == nil || f.Code != fault.CodeInvalidRequest || f.Field != "password" || !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%s under an invalid policy: %v", name, err)
		}
	}
}

// TestCheckSettings: the settings the admin API stores are refused on the
// field of the setting at fault.
func TestCheckSettings(t *testing.T) {
	for _, c := range []struct {
		name     string
		settings map[string]any
		field    string
	}{
		{"none", nil, ""},
		{"valid", map[string]any{"password_policy": map[string]any{"min_length": 12, "pattern": "^[^ ]+$"}, "self_service": map[string]any{"signup": true}}, ""},
		{"bad pattern", map[string]any{"password_policy": map[string]any{"pattern": "(["}}, "settings.password_policy"},
		{"negative length", map[string]any{"password_policy": map[string]any{"min_length": -1}}, "settings.password_policy"},
		{"history too long", map[string]any{"password_policy": map[string]any{"history": password.MaxHistory + 1}}, "settings.password_policy"},
		{"unknown key", map[string]any{"password_policy": map[string]any{"minimum_length": 3}}, "settings.password_policy"},
		{"not an object", map[string]any{"password_policy": "strict"}, "settings.password_policy"},
		{"self service type", map[string]any{"self_service": map[string]any{"signup": "yes"}}, "settings.self_service"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckSettings(c.settings)
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if f := fault.From(err); f == nil || f.Code != fault.CodeInvalidRequest || f.Field != c.field {
				t.Fatalf("want invalid_request on %s, got %v", c.field, err)
			}
		})
	}
}
