//go:build !wasip1

package userstore_test

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
	"github.com/latchid/latch/sdk/userstore"
)

// staff is a read-only directory compiled into the module. It implements
// only the required Store, so creating, updating or deleting a user, and
// listing groups, answer unsupported.
type staff struct {
	users  []abi.User
	hashes map[string][32]byte // by user id: SHA-256 of the password (a toy: use a slow hash)
}

func (s *staff) GetUser(req abi.GetUserRequest) (abi.User, error) {
	for _, u := range s.users {
		if u.ID == req.ID {
			return u, nil
		}
	}
	return abi.User{}, plugin.ErrNotFound.WithMessage("user not found")
}

func (s *staff) FindUsers(req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	var out abi.FindUsersResponse
	for _, u := range s.users {
		if req.Username == "" || strings.EqualFold(u.Username, req.Username) {
			out.Users = append(out.Users, u)
		}
	}
	return out, nil
}

func (s *staff) AuthenticateUser(req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	found, err := s.FindUsers(abi.FindUsersRequest{Username: req.Username})
	if err != nil || len(found.Users) == 0 {
		return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, err
	}
	u := found.Users[0]
	if !u.Enabled {
		return abi.AuthenticateUserResponse{Outcome: abi.UserDisabled}, nil
	}
	want, got := s.hashes[u.ID], sha256.Sum256([]byte(req.Password))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return abi.AuthenticateUserResponse{Outcome: abi.UserInvalidCredentials}, nil
	}
	return abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, User: &u}, nil
}

var _ userstore.Store = (*staff)(nil)

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	plugin.Define(plugin.Meta{Name: "staff-directory", Version: "1.0.0"})
	userstore.Register("staff", &staff{
		users:  []abi.User{{ID: "u-1", Username: "alice", Enabled: true}, {ID: "u-2", Username: "bob"}},
		hashes: map[string][32]byte{"u-1": sha256.Sum256([]byte("wonderland"))},
	})
}

func Example() {
	h := plugintest.New(nil) // in a test: plugintest.New(t)

	u, err := h.GetUser("staff", abi.GetUserRequest{Tenant: "acme", ID: "u-1"})
	fmt.Println(u.Username, err)

	_, err = h.GetUser("staff", abi.GetUserRequest{Tenant: "acme", ID: "u-9"})
	fmt.Println(err)

	a, _ := h.AuthenticateUser("staff", abi.AuthenticateUserRequest{Username: "Alice", Password: "wonderland"})
	fmt.Println(a.Outcome, a.User.ID)

	_, err = h.CreateUser("staff", abi.CreateUserRequest{User: abi.User{Username: "carol"}})
	fmt.Println(err)
	// Output:
	// alice <nil>
	// not_found: user not found
	// authenticated u-1
	// unsupported: this user store does not support the operation
}
