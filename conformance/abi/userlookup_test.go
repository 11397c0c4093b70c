package abi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/plugin/native"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
)

// namedStore is a hand-written user store: its users are named in the
// configuration, with the ids "<prefix>-<username>".
type namedStore struct {
	Prefix string   `json:"prefix"`
	Names  []string `json:"names"`
}

func (s *namedStore) user(name string) abi.User {
	return abi.User{ID: s.Prefix + "-" + name, Username: name, Enabled: true}
}

func (s *namedStore) GetUser(_ context.Context, req abi.GetUserRequest) (abi.User, error) {
	for _, n := range s.Names {
		if s.Prefix+"-"+n == req.ID {
			return s.user(n), nil
		}
	}
	return abi.User{}, userstore.ErrNotFound
}

func (s *namedStore) FindUsers(_ context.Context, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	out := abi.FindUsersResponse{Users: []abi.User{}}
	for _, n := range s.Names {
		if req.Username == "" || strings.EqualFold(n, req.Username) {
			out.Users = append(out.Users, s.user(n))
		}
	}
	return out, nil
}

func (s *namedStore) AuthenticateUser(context.Context, abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
}

var _ userstore.Store = (*namedStore)(nil)

// TestNativeUserLookup: a native plugin's user look-ups go through the
// tenant's user store domains, as a builtin authenticator's do: "alice"
// is the primary store's, "LDAP/alice" the directory's, "erin" falls
// through the search order, and the ids it gets back route to their
// store.
func TestNativeUserLookup(t *testing.T) {
	t.Parallel()
	env := newKernelEnv(t)
	reg := extension.NewRegistry()
	reg.Register(extension.Module{ID: "userstore.named", New: func() any { return new(namedStore) }})
	set, err := reg.Load(t.Context(), []extension.InstanceConfig{
		{Name: "local", Module: "userstore.named", Config: []byte(`{"prefix":"local","names":["alice","dave"]}`)},
		{Name: "corp", Module: "userstore.named", Config: []byte(`{"prefix":"corp","names":["alice","erin"]}`)},
	}, extension.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	env.dir, err = router.New(func(tenant string) []*extension.Instance { return set.Enabled(tenant, extension.KindUserStore) },
		router.Config{Domains: map[string]string{"corp": "LDAP"}})
	if err != nil {
		t.Fatal(err)
	}
	_, r := env.loadNative(t, "lookupguest", native.Options{
		Command: buildNative(t, "testdata/guests/nativemisbehave"), Args: []string{"-lookup"},
		Grants: []string{abi.CapabilityConfig, abi.CapabilityUserLookup},
	})
	a := loadInstance[authn.Authenticator](t, r, "authn.misbehave", `{}`)
	for _, tc := range []struct{ username, subject, shown string }{
		{"alice", "local-alice", "alice"},
		{"LDAP/alice", "LDAP:corp-alice", "LDAP/alice"},
		{"ldap/ALICE", "LDAP:corp-alice", "LDAP/alice"},
		{"erin", "LDAP:corp-erin", "LDAP/erin"},
		{"LDAP/dave", "", ""},
		{"nobody", "", ""},
	} {
		t.Run(tc.username, func(t *testing.T) {
			resp, err := authn.Check(a.Authenticate(t.Context(), doReq("who:"+tc.username)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.subject == "" {
				if resp.Outcome != abi.OutcomeNotAuthenticated || resp.Reason != abi.ReasonInvalidCredentials {
					t.Errorf("who:%s = %+v, want not_authenticated", tc.username, resp)
				}
				return
			}
			if resp.Outcome != abi.OutcomeAuthenticated || resp.Subject != tc.subject || resp.Claims["username"] != tc.shown {
				t.Errorf("who:%s = %s %q %v, want subject %q username %q", tc.username, resp.Outcome, resp.Subject, resp.Claims, tc.subject, tc.shown)
			}
		})
	}
}
