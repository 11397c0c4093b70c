package abi

import (
	"testing"

	latchabi "github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
)

// UserStoreCases are what a user store under test must satisfy.
type UserStoreCases struct {
	// Tenant is the tenant of every request.
	Tenant string
	// User is a user the store holds (ID and Username must be set).
	User latchabi.User
	// Password is User's password.
	Password string
	// UnknownID and UnknownUsername name no user of the store.
	UnknownID, UnknownUsername string
}

// RunUserStore runs the user store suite, read side: GetUser finds User by
// id and answers not_found for UnknownID; FindUsers by username finds User
// and nothing for UnknownUsername; AuthenticateUser (every answer passing
// userstore.CheckAuthenticate) authenticates User with Password as User,
// refuses a wrong password and reports UnknownUsername unknown; requests are
// not modified; concurrent calls agree; and a cancelled context is honoured
// within CancelWithin. newInstance is called once per subtest.
func RunUserStore(t *testing.T, newInstance func(t *testing.T) userstore.Store, cases UserStoreCases) {
	t.Helper()
	if cases.User.ID == "" || cases.User.Username == "" || cases.Password == "" {
		t.Fatal("UserStoreCases needs User.ID, User.Username and Password")
	}
	auth := func(t *testing.T, s userstore.Store, username, password string) latchabi.AuthenticateUserResponse {
		t.Helper()
		req := latchabi.AuthenticateUserRequest{Tenant: cases.Tenant, Username: username, Password: password}
		before := req
		resp, err := userstore.CheckAuthenticate(s.AuthenticateUser(t.Context(), req))
		sameRequest(t, "request", before, req)
		if err != nil {
			t.Fatalf("AuthenticateUser(%q): %v (every answer must pass userstore.CheckAuthenticate)", username, err)
		}
		return resp
	}
	authenticated := func(t *testing.T, resp latchabi.AuthenticateUserResponse) {
		t.Helper()
		if resp.Outcome != latchabi.UserAuthenticated || resp.User == nil || resp.User.ID != cases.User.ID {
			t.Fatalf("AuthenticateUser(User, Password): outcome %q user %+v, want %q as %s", resp.Outcome, resp.User, latchabi.UserAuthenticated, cases.User.ID)
		}
	}

	t.Run("get user", func(t *testing.T) {
		s := newInstance(t)
		req := latchabi.GetUserRequest{Tenant: cases.Tenant, ID: cases.User.ID}
		u, err := s.GetUser(t.Context(), req)
		if err != nil {
			t.Fatalf("GetUser(%s): %v", cases.User.ID, err)
		}
		if u.ID != cases.User.ID || u.Username != cases.User.Username {
			t.Fatalf("GetUser(%s) = %s %q, want %s %q", cases.User.ID, u.ID, u.Username, cases.User.ID, cases.User.Username)
		}
		if _, err := s.GetUser(t.Context(), latchabi.GetUserRequest{Tenant: cases.Tenant, ID: cases.UnknownID}); fault.CodeOf(err) != fault.CodeNotFound {
			t.Fatalf("GetUser(%q): %v, want not_found", cases.UnknownID, err)
		}
	})
	t.Run("find users", func(t *testing.T) {
		s := newInstance(t)
		page, err := s.FindUsers(t.Context(), latchabi.FindUsersRequest{Tenant: cases.Tenant, Username: cases.User.Username})
		if err != nil {
			t.Fatalf("FindUsers(username %q): %v", cases.User.Username, err)
		}
		if len(page.Users) != 1 || page.Users[0].ID != cases.User.ID {
			t.Fatalf("FindUsers(username %q) = %+v, want exactly %s", cases.User.Username, page.Users, cases.User.ID)
		}
		page, err = s.FindUsers(t.Context(), latchabi.FindUsersRequest{Tenant: cases.Tenant, Username: cases.UnknownUsername})
		if err != nil || len(page.Users) != 0 {
			t.Fatalf("FindUsers(username %q) = %+v, %v; want none", cases.UnknownUsername, page.Users, err)
		}
	})
	t.Run("authenticate", func(t *testing.T) {
		s := newInstance(t)
		authenticated(t, auth(t, s, cases.User.Username, cases.Password))
		if resp := auth(t, s, cases.User.Username, cases.Password+"-wrong"); resp.Outcome == latchabi.UserAuthenticated {
			t.Fatal("a wrong password authenticated")
		}
		if resp := auth(t, s, cases.UnknownUsername, cases.Password); resp.Outcome != latchabi.UserUnknown {
			t.Fatalf("unknown user: outcome %q, want %q (so that the next store is asked)", resp.Outcome, latchabi.UserUnknown)
		}
	})
	t.Run("concurrent calls", func(t *testing.T) {
		s := newInstance(t)
		parallel(concurrency, func(i int) {
			pw := cases.Password
			if i%2 == 1 {
				pw += "-wrong"
			}
			resp, err := userstore.CheckAuthenticate(s.AuthenticateUser(t.Context(), latchabi.AuthenticateUserRequest{Tenant: cases.Tenant, Username: cases.User.Username, Password: pw}))
			if err != nil || (resp.Outcome == latchabi.UserAuthenticated) != (i%2 == 0) {
				t.Errorf("concurrent AuthenticateUser %d: outcome %q, error %v", i, resp.Outcome, err)
			}
		})
	})
	t.Run("cancelled context", func(t *testing.T) {
		s := newInstance(t)
		ctx := cancelled(t)
		callWithin(t, CancelWithin, func() {
			_, _ = userstore.CheckAuthenticate(s.AuthenticateUser(ctx, latchabi.AuthenticateUserRequest{Tenant: cases.Tenant, Username: cases.User.Username, Password: cases.Password}))
		})
		authenticated(t, auth(t, s, cases.User.Username, cases.Password))
	})
}
