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
	h := &storeHandler{s: s}
	return h.handle
}

// storeHandler holds the requests and responses of the user-store
// operations, reused from call to call (the dispatcher runs one call at a
// time), which saves the allocations of decoding into and answering from
// fresh values. A request is cleared after use so it keeps nothing alive;
// a response stays until the next call, whose reply replaces its encoding.
type storeHandler struct {
	s Store

	get     abi.GetUserRequest
	find    abi.FindUsersRequest
	authn   abi.AuthenticateUserRequest
	create  abi.CreateUserRequest
	update  abi.UpdateUserRequest
	del     abi.DeleteUserRequest
	groups  abi.ListGroupsRequest
	user    abi.UserResponse
	found   abi.FindUsersResponse
	checked abi.AuthenticateUserResponse
	deleted abi.DeleteUserResponse
	listed  abi.ListGroupsResponse
}

// handle answers one user-store operation.
func (h *storeHandler) handle(op abi.OpCode, payload []byte) (abi.Message, error) {
	resp, err := h.answer(op, payload)
	h.get, h.find, h.authn = abi.GetUserRequest{}, abi.FindUsersRequest{}, abi.AuthenticateUserRequest{}
	h.create, h.update = abi.CreateUserRequest{}, abi.UpdateUserRequest{}
	h.del, h.groups = abi.DeleteUserRequest{}, abi.ListGroupsRequest{}
	return resp, err
}

// answer decodes the request of op into its reused value and answers it.
func (h *storeHandler) answer(op abi.OpCode, payload []byte) (abi.Message, error) {
	switch op {
	case abi.OpCodeGetUser:
		if err := plugin.Decode(payload, &h.get); err != nil {
			return nil, err
		}
		return h.userResponse(h.s.GetUser(h.get)), nil
	case abi.OpCodeFindUsers:
		if err := plugin.Decode(payload, &h.find); err != nil {
			return nil, err
		}
		resp, err := h.s.FindUsers(h.find)
		if err != nil {
			resp = abi.FindUsersResponse{Error: plugin.WireError(err)}
		}
		h.found = resp
		return &h.found, nil
	case abi.OpCodeAuthenticateUser:
		if err := plugin.Decode(payload, &h.authn); err != nil {
			return nil, err
		}
		resp, err := h.s.AuthenticateUser(h.authn)
		if err != nil {
			resp = abi.AuthenticateUserResponse{Error: plugin.WireError(err)}
		}
		h.checked = resp
		return &h.checked, nil
	case abi.OpCodeCreateUser:
		if err := plugin.Decode(payload, &h.create); err != nil {
			return nil, err
		}
		c, ok := h.s.(Creator)
		if !ok {
			return h.userResponse(abi.User{}, unsupported), nil
		}
		return h.userResponse(c.CreateUser(h.create)), nil
	case abi.OpCodeUpdateUser:
		if err := plugin.Decode(payload, &h.update); err != nil {
			return nil, err
		}
		x, ok := h.s.(Updater)
		if !ok {
			return h.userResponse(abi.User{}, unsupported), nil
		}
		return h.userResponse(x.UpdateUser(h.update)), nil
	case abi.OpCodeDeleteUser:
		if err := plugin.Decode(payload, &h.del); err != nil {
			return nil, err
		}
		if x, ok := h.s.(Deleter); ok {
			h.deleted = abi.DeleteUserResponse{Error: plugin.WireError(x.DeleteUser(h.del))}
		} else {
			h.deleted = abi.DeleteUserResponse{Error: plugin.WireError(unsupported)}
		}
		return &h.deleted, nil
	case abi.OpCodeListGroups:
		if err := plugin.Decode(payload, &h.groups); err != nil {
			return nil, err
		}
		x, ok := h.s.(GroupLister)
		if !ok {
			h.listed = abi.ListGroupsResponse{Error: plugin.WireError(unsupported)}
			return &h.listed, nil
		}
		resp, err := x.ListGroups(h.groups)
		if err != nil {
			resp = abi.ListGroupsResponse{Error: plugin.WireError(err)}
		}
		h.listed = resp
		return &h.listed, nil
	}
	// A user-store operation newer than this SDK.
	return nil, plugin.ErrUnsupported.WithMessage("unknown user store operation " + op.String())
}

// userResponse answers an operation returning a user.
func (h *storeHandler) userResponse(u abi.User, err error) *abi.UserResponse {
	if err != nil {
		h.user = abi.UserResponse{Error: plugin.WireError(err)}
	} else {
		h.user = abi.UserResponse{User: u}
	}
	return &h.user
}
