package abi

import "encoding/json"

// User is the wire record of a user account, as a user store keeps it.
// Passwords never appear in it.
//
// Encoding example:
//
//	{"id":"u-42","username":"alice","email":"alice@example.com",
//	 "email_verified":true,"enabled":true,"attributes":{"department":"sales"},
//	 "version":3}
type User struct {
	// ID is the user's stable identifier within its store; it becomes the
	// subject of tokens.
	ID string `json:"id" wire:"1"`
	// Username is the login name, unique per store, compared
	// case-insensitively.
	Username string `json:"username" wire:"2"`
	// Email is the primary email address.
	Email string `json:"email,omitempty" wire:"3"`
	// EmailVerified reports whether Email was proven to belong to the user.
	EmailVerified bool `json:"email_verified,omitempty" wire:"4"`
	// PhoneNumber is in E.164 form.
	PhoneNumber string `json:"phone_number,omitempty" wire:"5"`
	// DisplayName is the name shown in user interfaces.
	DisplayName string `json:"display_name,omitempty" wire:"6"`
	// GivenName is the first name.
	GivenName string `json:"given_name,omitempty" wire:"7"`
	// FamilyName is the last name.
	FamilyName string `json:"family_name,omitempty" wire:"8"`
	// Enabled is false for a disabled account, which cannot log in.
	Enabled bool `json:"enabled" wire:"9"`
	// Locked is true while the account is locked.
	Locked bool `json:"locked,omitempty" wire:"10"`
	// Attributes holds the other claims of the user, in the local dialect.
	Attributes map[string]any `json:"attributes,omitempty" wire:"11"`
	// Version increases on every change; an update naming a stale version
	// fails with CodePreconditionFailed. 0 when the store has no versions.
	Version int64 `json:"version,omitempty" wire:"12"`
}

// Group is the wire record of a group.
type Group struct {
	// ID is the group's stable identifier within its store.
	ID string `json:"id" wire:"1"`
	// Name is the group's name, unique per store.
	Name string `json:"name" wire:"2"`
	// Description is a sentence about the group.
	Description string `json:"description,omitempty" wire:"3"`
}

// FindUsersRequest lists users matching a filter. Empty filter fields do not
// filter; all set fields must match.
type FindUsersRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// Username matches exactly, case-insensitively.
	Username string `json:"username,omitempty" wire:"2"`
	// Email matches exactly, case-insensitively.
	Email string `json:"email,omitempty" wire:"3"`
	// Attributes match exactly, attribute by attribute.
	Attributes map[string]string `json:"attributes,omitempty" wire:"4"`
	// Limit caps the number of users returned; 0 means the store's default.
	Limit int `json:"limit,omitempty" wire:"5"`
	// Cursor is the Next of the previous page; empty for the first page.
	Cursor string `json:"cursor,omitempty" wire:"6"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"7"`
}

// FindUsersResponse is one page of users.
type FindUsersResponse struct {
	// Users lists the users found, in the store's stable order.
	Users []User `json:"users" wire:"1"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty" wire:"2"`
	// Error says why the search failed.
	Error *Error `json:"error,omitempty" wire:"3"`
}

// GetUserRequest reads one user by id.
type GetUserRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// ID is the user's id.
	ID string `json:"id" wire:"2"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"3"`
}

// UserResponse carries one user: the answer to OpGetUser, OpCreateUser and
// OpUpdateUser. An unknown user is an Error with CodeNotFound.
type UserResponse struct {
	// User is the user as stored after the operation.
	User User `json:"user" wire:"1"`
	// Error says why the operation failed.
	Error *Error `json:"error,omitempty" wire:"2"`
}

// CreateUserRequest creates a user. A taken username is an Error with
// CodeConflict; a read-only store answers CodeUnsupported.
type CreateUserRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// User is the new user; ID may be empty for the store to choose.
	User User `json:"user" wire:"2"`
	// Password is the initial password in clear; empty for none. The store
	// must hash it (or hand it to its directory) and never log it.
	Password string `json:"password,omitempty" wire:"3"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"4"`
}

// UpdateUserRequest replaces a user's record. When User.Version is not 0 and
// differs from the stored version the store answers CodePreconditionFailed.
type UpdateUserRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// User is the complete new record; User.ID names the user.
	User User `json:"user" wire:"2"`
	// Password, when not empty, replaces the password (in clear).
	Password string `json:"password,omitempty" wire:"3"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"4"`
}

// DeleteUserRequest deletes a user. An unknown user is CodeNotFound.
type DeleteUserRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// ID is the user's id.
	ID string `json:"id" wire:"2"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"3"`
}

// DeleteUserResponse acknowledges OpDeleteUser.
type DeleteUserResponse struct {
	// Error says why the deletion failed.
	Error *Error `json:"error,omitempty" wire:"1"`
}

// Outcomes of OpAuthenticateUser.
const (
	// UserAuthenticated: the password matches; User is set.
	UserAuthenticated = "authenticated"
	// UserInvalidCredentials: the user exists in this store and the
	// password does not match. The search stops here.
	UserInvalidCredentials = "invalid_credentials"
	// UserUnknown: this store has no such user. The kernel asks the
	// tenant's next user store.
	UserUnknown = "unknown_user"
	// UserLocked: the account is locked; the password was not checked.
	UserLocked = "locked"
	// UserDisabled: the account is disabled; the password was not checked.
	UserDisabled = "disabled"
)

// AuthenticateUserRequest checks a username and password against a store.
//
// Encoding example:
//
//	{"tenant":"acme","username":"alice","password":"s3cret"}
type AuthenticateUserRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// Username is the login name as typed.
	Username string `json:"username" wire:"2"`
	// Password is the password in clear. Never log it.
	Password string `json:"password" wire:"3"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"4"`
}

// AuthenticateUserResponse is a store's verdict on a password.
//
// Encoding example:
//
//	{"outcome":"authenticated","user":{"id":"u-42","username":"alice","enabled":true}}
type AuthenticateUserResponse struct {
	// Outcome is one of the User... outcome constants.
	Outcome string `json:"outcome" wire:"1"`
	// User is the authenticated user; set with UserAuthenticated.
	User *User `json:"user,omitempty" wire:"2"`
	// Error says why the store could not decide (its directory is down).
	Error *Error `json:"error,omitempty" wire:"3"`
}

// ListGroupsRequest lists groups: the groups of one user when UserID is set,
// else every group of the store.
type ListGroupsRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// UserID, when set, lists only the groups this user belongs to.
	UserID string `json:"user_id,omitempty" wire:"2"`
	// Limit caps the number of groups returned; 0 means the store's
	// default.
	Limit int `json:"limit,omitempty" wire:"3"`
	// Cursor is the Next of the previous page; empty for the first page.
	Cursor string `json:"cursor,omitempty" wire:"4"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"5"`
}

// ListGroupsResponse is one page of groups.
type ListGroupsResponse struct {
	// Groups lists the groups, in the store's stable order.
	Groups []Group `json:"groups" wire:"1"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty" wire:"2"`
	// Error says why the listing failed.
	Error *Error `json:"error,omitempty" wire:"3"`
}
