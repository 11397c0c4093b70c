// Package userstore is the user-store kind for Latch WASM guests: the
// interfaces an author implements to find, authenticate and (optionally)
// create, update and delete users and list groups in a directory of their
// own, and its Register function.
//
// Writing a user store:
//
//  1. Implement Store (GetUser, FindUsers, AuthenticateUser) on a type of
//     yours; add Creator, Updater, Deleter or GroupLister for what your
//     directory can do. An operation you do not implement is answered
//     abi.CodeUnsupported (a read-only store).
//  2. Answer an unknown user with plugin.ErrNotFound, a taken username with
//     plugin.ErrConflict, a stale version with plugin.ErrPreconditionFailed;
//     a wrong password is abi.UserInvalidCredentials, not an error.
//  3. From an init function, call plugin.Define once and Register(name, impl).
//  4. Test it with sdk/plugintest: h.GetUser(name, req), h.FindUsers, ….
//
// Errors are answered in the response's Error field: a *plugin.Error keeps
// its code, anything else is internal with a generic message.
package userstore

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
)

// Store is what every user store answers. It may also implement Creator,
// Updater, Deleter and GroupLister, and the optional interfaces of
// sdk/plugin (Configure, Health, Close).
type Store interface {
	// GetUser reads one user by id; plugin.ErrNotFound when there is none.
	GetUser(req abi.GetUserRequest) (abi.User, error)
	// FindUsers lists the users matching req's filter, a page at a time.
	FindUsers(req abi.FindUsersRequest) (abi.FindUsersResponse, error)
	// AuthenticateUser checks a username and password; its Outcome is one
	// of the abi.User… outcome constants.
	AuthenticateUser(req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error)
}

// Creator is implemented by stores that can create users.
type Creator interface {
	// CreateUser creates req.User and returns it as stored (with its ID);
	// plugin.ErrConflict for a taken username.
	CreateUser(req abi.CreateUserRequest) (abi.User, error)
}

// Updater is implemented by stores that can update users.
type Updater interface {
	// UpdateUser replaces the record of req.User.ID and returns it as
	// stored; plugin.ErrPreconditionFailed for a stale req.User.Version.
	UpdateUser(req abi.UpdateUserRequest) (abi.User, error)
}

// Deleter is implemented by stores that can delete users.
type Deleter interface {
	// DeleteUser deletes a user; plugin.ErrNotFound when there is none.
	DeleteUser(req abi.DeleteUserRequest) error
}

// GroupLister is implemented by stores that know groups.
type GroupLister interface {
	// ListGroups lists the groups of req.UserID, or every group, a page at
	// a time.
	ListGroups(req abi.ListGroupsRequest) (abi.ListGroupsResponse, error)
}

// Register adds s as the user store named name (its extension id is
// "userstore.<name>"). Call it from an init function; it panics for an
// invalid or repeated name or a nil s (see plugin.Register).
func Register(name string, s Store) {
	if s == nil {
		panic("userstore: Register: nil Store " + name)
	}
	plugin.Register(abi.KindUserStore, name, s, handler(s))
}

// unsupported is the answer to an operation the store does not implement.
var unsupported = plugin.ErrUnsupported.WithMessage("this user store does not support the operation")

// handler answers the user-store operations with s.
func handler(s Store) plugin.Handler {
	return func(op abi.OpCode, payload []byte) (abi.Message, error) {
		switch op {
		case abi.OpCodeGetUser:
			var req abi.GetUserRequest
			if err := plugin.Decode(payload, &req); err != nil {
				return nil, err
			}
			u, err := s.GetUser(req)
			return userResponse(u, err), nil
		case abi.OpCodeFindUsers:
			var req abi.FindUsersRequest
			if err := plugin.Decode(payload, &req); err != nil {
				return nil, err
			}
			resp, err := s.FindUsers(req)
			if err != nil {
				resp = abi.FindUsersResponse{Error: plugin.WireError(err)}
			}
			return &resp, nil
		case abi.OpCodeAuthenticateUser:
			var req abi.AuthenticateUserRequest
			if err := plugin.Decode(payload, &req); err != nil {
				return nil, err
			}
			resp, err := s.AuthenticateUser(req)
			if err != nil {
				resp = abi.AuthenticateUserResponse{Error: plugin.WireError(err)}
			}
			return &resp, nil
		case abi.OpCodeCreateUser:
			var req abi.CreateUserRequest
			if err := plugin.Decode(payload, &req); err != nil {
				return nil, err
			}
			c, ok := s.(Creator)
			if !ok {
				return userResponse(abi.User{}, unsupported), nil
			}
			u, err := c.CreateUser(req)
			return userResponse(u, err), nil
		case abi.OpCodeUpdateUser:
			var req abi.UpdateUserRequest
			if err := plugin.Decode(payload, &req); err != nil {
				return nil, err
			}
			x, ok := s.(Updater)
			if !ok {
				return userResponse(abi.User{}, unsupported), nil
			}
			u, err := x.UpdateUser(req)
			return userResponse(u, err), nil
		case abi.OpCodeDeleteUser:
			var req abi.DeleteUserRequest
			if err := plugin.Decode(payload, &req); err != nil {
				return nil, err
			}
			x, ok := s.(Deleter)
			if !ok {
				return &abi.DeleteUserResponse{Error: plugin.WireError(unsupported)}, nil
			}
			return &abi.DeleteUserResponse{Error: plugin.WireError(x.DeleteUser(req))}, nil
		case abi.OpCodeListGroups:
			var req abi.ListGroupsRequest
			if err := plugin.Decode(payload, &req); err != nil {
				return nil, err
			}
			x, ok := s.(GroupLister)
			if !ok {
				return &abi.ListGroupsResponse{Error: plugin.WireError(unsupported)}, nil
			}
			resp, err := x.ListGroups(req)
			if err != nil {
				resp = abi.ListGroupsResponse{Error: plugin.WireError(err)}
			}
			return &resp, nil
		}
		// A user-store operation newer than this SDK.
		return nil, plugin.ErrUnsupported.WithMessage("unknown user store operation " + op.String())
	}
}

// userResponse answers an operation returning a user.
func userResponse(u abi.User, err error) *abi.UserResponse {
	if err != nil {
		return &abi.UserResponse{Error: plugin.WireError(err)}
	}
	return &abi.UserResponse{User: u}
}
