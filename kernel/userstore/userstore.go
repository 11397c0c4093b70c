// Package userstore defines the user store extension kind: where user
// accounts and groups live (the embedded SQL store, LDAP or Active
// Directory, a REST directory). A tenant has an ordered list of user stores;
// the kernel looks users up and checks passwords store by store, in that
// order, until one knows the user.
//
// Every store can read and authenticate. Writing and listing groups are
// optional abilities (Writer, GroupLister), found by type assertion, so a
// read-only directory implements only Store.
package userstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
)

// Sentinel errors. The faults match by code with errors.Is, so an error
// reported by a WASM or go-plugin store with code not_found matches
// ErrNotFound too.
var (
	// ErrNotFound means the store has no such user.
	ErrNotFound = fault.NotFound.WithMessage("user not found")
	// ErrConflict means the username (or another unique value) is taken.
	ErrConflict = fault.Conflict.WithMessage("user already exists")
	// ErrVersionMismatch means an update named a stale version.
	ErrVersionMismatch = fault.PreconditionFailed.WithMessage("user was changed by someone else")
	// ErrReadOnly means the store does not accept writes (it is not a
	// Writer, or its configuration makes it read-only).
	ErrReadOnly = fault.Unsupported.WithMessage("user store is read-only")
	// ErrInvalidResponse means a store's answer broke the contract. It is
	// always wrapped in a fault.Internal.
	ErrInvalidResponse = errors.New("invalid user store response")
)

// Store is the required interface of a user store. Implementations must be
// safe for concurrent use and must return promptly when ctx is done.
type Store interface {
	// GetUser returns the user with the id, or ErrNotFound.
	GetUser(ctx context.Context, req abi.GetUserRequest) (abi.User, error)
	// FindUsers returns one page of the users matching the request.
	FindUsers(ctx context.Context, req abi.FindUsersRequest) (abi.FindUsersResponse, error)
	// AuthenticateUser checks a password. A wrong password or an unknown
	// user is an outcome, not an error; an error means the store could
	// not decide.
	AuthenticateUser(ctx context.Context, req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error)
}

// Writer is implemented by stores that accept changes.
type Writer interface {
	// CreateUser stores a new user and returns it as stored, or
	// ErrConflict.
	CreateUser(ctx context.Context, req abi.CreateUserRequest) (abi.User, error)
	// UpdateUser replaces a user and returns it as stored, or ErrNotFound
	// or ErrVersionMismatch.
	UpdateUser(ctx context.Context, req abi.UpdateUserRequest) (abi.User, error)
	// DeleteUser removes a user, or returns ErrNotFound.
	DeleteUser(ctx context.Context, req abi.DeleteUserRequest) error
}

// GroupLister is implemented by stores that keep groups.
type GroupLister interface {
	// ListGroups returns one page of groups (of one user when
	// req.UserID is set).
	ListGroups(ctx context.Context, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error)
}

// GroupMemberLister is implemented by GroupListers that list the members
// of one group, so that a group of the store shows its members (SCIM's
// Group resource). It is a builtin ability, without a wire form.
type GroupMemberLister interface {
	// ListGroupMembers returns the group with the id and its member
	// users, at most the store's own bound of them (in the store's
	// order); GroupMembers.More says whether the group holds more. An
	// unknown group is ErrNotFound.
	ListGroupMembers(ctx context.Context, tenant, groupID string) (GroupMembers, error)
}

// GroupMembers is a group with its members, as GroupMemberLister returns
// it.
type GroupMembers struct {
	// Group is the group.
	Group abi.Group
	// Members are users of the store (id, username and the profile
	// fields).
	Members []abi.User
	// Limit is the store's bound on Members.
	Limit int
	// More is true when the group holds more members than Members: the
	// list stopped at Limit.
	More bool
}

// AttributeReader is implemented by stores that read named attributes of
// a user on demand: the claims an administrator maps to a store's own
// attributes (kernel/claims, docs/claims.md). It is a builtin ability,
// without a wire form.
type AttributeReader interface {
	// ReadAttributes returns the values of the named attributes of the
	// user with the id (absent attributes are left out; several values
	// are a list), or ErrNotFound.
	ReadAttributes(ctx context.Context, tenant, id string, names []string) (map[string]any, error)
}

// ReadOnlyReporter is implemented by Writers whose configuration may
// refuse every write (a read-only mode), so that listings of stores can
// say so before a write is tried.
type ReadOnlyReporter interface {
	IsReadOnly() bool
}

// CheckAuthenticate turns what AuthenticateUser returned into a checked
// verdict: a nil error and a response with a known outcome (and a user when
// authenticated), or an error that carries a *fault.Error.
func CheckAuthenticate(resp abi.AuthenticateUserResponse, err error) (abi.AuthenticateUserResponse, error) {
	if err != nil {
		return abi.AuthenticateUserResponse{}, err
	}
	if resp.Error != nil {
		return abi.AuthenticateUserResponse{}, fault.FromWire(*resp.Error)
	}
	switch resp.Outcome {
	case abi.UserAuthenticated:
		if resp.User == nil || resp.User.ID == "" {
			return abi.AuthenticateUserResponse{}, invalid("outcome %q without a user", resp.Outcome)
		}
	case abi.UserInvalidCredentials, abi.UserUnknown, abi.UserLocked, abi.UserDisabled:
	default:
		return abi.AuthenticateUserResponse{}, invalid("unknown outcome %q", resp.Outcome)
	}
	return resp, nil
}

func invalid(format string, args ...any) error {
	return fault.Internal.WithCause(fmt.Errorf("checking user store response: %w: %s", ErrInvalidResponse, fmt.Sprintf(format, args...)))
}
