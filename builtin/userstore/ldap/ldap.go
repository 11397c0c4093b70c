// Package ldap is the userstore.ldap extension: users and groups kept in
// an LDAP directory (OpenLDAP, 389 Directory Server, Active Directory),
// offered as the user store kind.
//
// The store searches as a service account and checks a password by a
// search for the user followed by a bind as the user's DN, on a separate
// pool of connections so that the service connections keep their
// identity. Every value that reaches a filter is escaped (RFC 4515), and an
// empty password never reaches a bind: LDAP reads a simple bind with an
// empty password as an unauthenticated bind, which many servers accept
// (RFC 4513 section 5.1.2).
//
// Listings use the simple paged results control (RFC 2696). The store is
// read-only unless configured read-write; then it creates, changes and
// deletes entries, setting passwords with the Password Modify extended
// operation (RFC 3062) or an attribute.
//
// Connections are secured with LDAPS or StartTLS (RFC 4511 section 4.14);
// plain LDAP must be allowed explicitly. They are pooled, bounded, checked
// when they have been idle and replaced after a network failure, so the
// store recovers by itself when the directory restarts. Every operation has
// a deadline: the configured timeout, or the caller's context when sooner.
package ldap

import (
	"context"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore"
)

// ID is the module id.
const ID extension.ID = "userstore.ldap"

//go:embed config.schema.json
var configSchema []byte

// Module returns the userstore.ldap module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindUserStore,
		New:          func() any { return new(Store) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Users and groups in an LDAP directory or Active Directory.",
	}
}

// Modes of the store.
const (
	modeReadOnly  = "read_only"
	modeReadWrite = "read_write"
)

// maxGroupsPerUser bounds the groups read for one user.
const maxGroupsPerUser = 10_000

// maxFilterValue bounds a value FindUsers puts into a filter.
const maxFilterValue = 1024

// Store is a userstore.ldap instance. Its exported fields are its
// configuration (see config.schema.json and README.md).
type Store struct {
	// URLs are the servers, tried in order: ldaps://host[:port] or
	// ldap://host[:port].
	URLs []string `json:"urls"`
	// StartTLS upgrades ldap:// connections with StartTLS.
	StartTLS bool `json:"start_tls,omitempty"`
	// AllowInsecure permits ldap:// without StartTLS, which sends
	// passwords in clear.
	AllowInsecure bool `json:"allow_insecure,omitempty"`
	// TLS configures certificate checks for LDAPS and StartTLS.
	TLS TLS `json:"tls,omitzero"`
	// BindDN and BindPassword (or BindPasswordFile) are the service
	// account; an empty BindDN searches anonymously.
	BindDN           string `json:"bind_dn,omitempty"`
	BindPassword     string `json:"bind_password,omitempty"`
	BindPasswordFile string `json:"bind_password_file,omitempty"`
	// TimeoutMillis bounds every operation; default 5000.
	TimeoutMillis int `json:"timeout_millis,omitempty"`
	// DialTimeoutMillis bounds connecting, TLS and the service bind;
	// default 5000.
	DialTimeoutMillis int `json:"dial_timeout_millis,omitempty"`
	// Pool sizes the connection pools.
	Pool Pool `json:"pool,omitzero"`
	// PageSize is the RFC 2696 page size of searches; default 500.
	PageSize int `json:"page_size,omitempty"`
	// Mode is read_only (default) or read_write.
	Mode string `json:"mode,omitempty"`
	// Users says where the users are and how they map.
	Users Users `json:"users"`
	// Groups says where the groups are; without a base DN the store has
	// no groups.
	Groups Groups `json:"groups,omitzero"`

	off     bool // configured with {}: no directory, no users
	st      *settings
	service *pool // bound as the service account: searches and writes
	auth    *pool // user binds only
	log     *slog.Logger
	metrics *metrics
}

// Provision checks the configuration and sets up the connection pools.
// It does not connect: the directory may come up after Latch, and Health
// reports whether it answers.
func (s *Store) Provision(ctx context.Context, env extension.Env) error {
	if reflect.ValueOf(s).Elem().IsZero() {
		// A node instantiates every builtin module when latch.yaml lists
		// no instances; without a directory this one is off.
		s.off = true
	}
	s.log = env.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(env.Metrics)
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	s.metrics = m
	if s.off {
		s.log.InfoContext(ctx, "userstore.ldap has no configuration; the instance is off and knows no users")
		return nil
	}
	st, err := s.settle()
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, fault.InvalidRequest.WithMessage(err.Error()).WithCause(err))
	}
	s.st = st
	s.service = m.instrument(newPool("service", st, true))
	s.auth = m.instrument(newPool("auth", st, false))
	return nil
}

// Close closes the pooled connections. It copes with a failed provision.
func (s *Store) Close(context.Context) error {
	if s.service != nil {
		s.service.close()
	}
	if s.auth != nil {
		s.auth.close()
	}
	return nil
}

// Health reports whether the directory answers the service account.
func (s *Store) Health(ctx context.Context) error {
	if s.off {
		return nil
	}
	err := s.do(ctx, s.service, true, func(c *conn) error {
		_, err := c.WhoAmI(nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("checking the directory: %w", ldapFault(err, "checking the directory"))
	}
	return nil
}

// GetUser returns the user with the id, or userstore.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, req abi.GetUserRequest) (abi.User, error) {
	if s.off {
		return abi.User{}, fmt.Errorf("getting user %q: %w", req.ID, userstore.ErrNotFound)
	}
	e, err := s.entryByID(ctx, req.ID)
	if err != nil {
		return abi.User{}, fmt.Errorf("getting user %q: %w", req.ID, err)
	}
	u, err := s.st.entryToUser(e)
	if err != nil {
		return abi.User{}, fmt.Errorf("getting user %q: %w", req.ID, fault.Internal.WithMessage("the directory entry is not a usable user").WithCause(err))
	}
	return u, nil
}

// FindUsers returns one page of the users matching the request, in the
// directory's order. Username and email match by the directory's equality
// rule for the attribute (case-insensitive for uid, mail and
// sAMAccountName); attributes match only when mapped in
// users.attributes.extra. The cursor is an offset: each page is a fresh
// paged search that skips the earlier entries, so a deep page costs the
// entries before it.
func (s *Store) FindUsers(ctx context.Context, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	if req.Limit < 0 {
		return abi.FindUsersResponse{}, fault.InvalidRequest.WithMessage("limit must be >= 0").WithField("limit")
	}
	limit := store.Page{Limit: req.Limit}.Normalize().Limit
	offset, err := decodeCursor(req.Cursor)
	if err != nil {
		return abi.FindUsersResponse{}, fault.InvalidRequest.WithMessage("malformed cursor").WithField("cursor").WithCause(err)
	}
	if s.off {
		return abi.FindUsersResponse{Users: []abi.User{}}, nil
	}
	a := s.st.users.Attributes
	parts := []string{s.st.userFilter}
	add := func(attr, v string) bool {
		if attr == "" || attr == unmapped {
			return false
		}
		parts = append(parts, "("+attr+"="+goldap.EscapeFilter(v)+")")
		return true
	}
	for field, v := range map[string]string{"username": req.Username, "email": req.Email} {
		if len(v) > maxFilterValue {
			return abi.FindUsersResponse{}, fault.InvalidRequest.WithMessagef("%s is longer than %d bytes", field, maxFilterValue).WithField(field)
		}
	}
	for k, v := range req.Attributes {
		if len(v) > maxFilterValue {
			return abi.FindUsersResponse{}, fault.InvalidRequest.WithMessagef("attribute %q is longer than %d bytes", k, maxFilterValue).WithField("attributes." + k)
		}
	}
	empty := abi.FindUsersResponse{Users: []abi.User{}}
	if req.Username != "" && !add(a.Username, req.Username) {
		return empty, nil
	}
	if req.Email != "" && !add(a.Email, req.Email) {
		return empty, nil
	}
	for _, k := range sortedAttrKeys(req.Attributes) {
		if !add(a.Extra[k], req.Attributes[k]) {
			return empty, nil
		}
	}
	filter := and(parts)
	entries, more, err := s.pagedSearch(ctx, s.st.users.BaseDN, s.st.userScope, filter, s.st.userAttrList, offset, limit)
	if err != nil {
		return abi.FindUsersResponse{}, fmt.Errorf("finding users: %w", ldapFault(err, "searching users"))
	}
	out := make([]abi.User, 0, len(entries))
	for _, e := range entries {
		u, err := s.st.entryToUser(e)
		if err != nil {
			s.log.WarnContext(ctx, "skipping directory entry", slog.String("dn", e.DN), slog.Any("err", err))
			continue
		}
		out = append(out, u)
	}
	resp := abi.FindUsersResponse{Users: out}
	if more {
		resp.Next = encodeCursor(offset + len(entries))
	}
	return resp, nil
}

// AuthenticateUser checks a password: a search for the username as the
// service account, then a bind as the entry found. An unknown user still
// costs a bind (to a DN that does not exist), so that the number of round
// trips does not tell which usernames exist. An empty password is refused
// without a bind.
func (s *Store) AuthenticateUser(ctx context.Context, req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	resp, err := s.authenticate(ctx, req)
	if err != nil {
		s.metrics.authentications.WithLabelValues("error").Inc()
		return abi.AuthenticateUserResponse{}, err
	}
	s.metrics.authentications.WithLabelValues(resp.Outcome).Inc()
	return resp, nil
}

func (s *Store) authenticate(ctx context.Context, req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	if s.off || req.Username == "" || len(req.Username) > maxUsernameLength {
		return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
	}
	filter := and([]string{s.st.userFilter, "(" + s.st.users.Attributes.Username + "=" + goldap.EscapeFilter(req.Username) + ")"})
	entries, err := s.search(ctx, s.st.users.BaseDN, s.st.userScope, filter, s.st.userAttrList, 2)
	if err != nil {
		return abi.AuthenticateUserResponse{}, fmt.Errorf("authenticating user: %w", ldapFault(err, "searching the user"))
	}
	switch len(entries) {
	case 0:
		if req.Password != "" && len(req.Password) <= maxPasswordLength {
			s.decoyBind(ctx, req.Password)
		}
		return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
	case 1:
	default:
		return abi.AuthenticateUserResponse{}, fmt.Errorf("authenticating user: %w",
			fault.Internal.WithMessage("the username matches several directory entries"))
	}
	u, err := s.st.entryToUser(entries[0])
	if err != nil {
		return abi.AuthenticateUserResponse{}, fmt.Errorf("authenticating user: %w",
			fault.Internal.WithMessage("the directory entry is not a usable user").WithCause(err))
	}
	switch {
	case !u.Enabled:
		return abi.AuthenticateUserResponse{Outcome: abi.UserDisabled}, nil
	case u.Locked:
		return abi.AuthenticateUserResponse{Outcome: abi.UserLocked}, nil
	case req.Password == "" || len(req.Password) > maxPasswordLength:
		return abi.AuthenticateUserResponse{Outcome: abi.UserInvalidCredentials}, nil
	}
	err = s.do(ctx, s.auth, true, func(c *conn) error { return c.Bind(entries[0].DN, req.Password) })
	if err != nil {
		if outcome, ok := s.bindOutcome(err); ok {
			return abi.AuthenticateUserResponse{Outcome: outcome}, nil
		}
		return abi.AuthenticateUserResponse{}, fmt.Errorf("authenticating user %q: %w", u.ID, ldapFault(err, "binding as the user"))
	}
	return abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, User: &u}, nil
}

// bindOutcome reads a refused bind as an outcome.
func (s *Store) bindOutcome(err error) (string, bool) {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return "", false
	}
	switch le.ResultCode {
	case goldap.LDAPResultInvalidCredentials:
		if s.st.users.State.ActiveDirectory && le.Err != nil {
			return adBindOutcome(le.Err.Error()), true
		}
		return abi.UserInvalidCredentials, true
	case goldap.LDAPResultUnwillingToPerform, goldap.LDAPResultConstraintViolation, goldap.LDAPResultInappropriateAuthentication:
		return abi.UserInvalidCredentials, true
	}
	return "", false
}

// decoyBind binds as a DN that does not exist, so that an unknown user
// costs the same round trips as a wrong password. Its result is ignored.
func (s *Store) decoyBind(ctx context.Context, password string) {
	dn := "cn=latch-decoy-bind," + s.st.users.BaseDN
	_ = s.do(ctx, s.auth, false, func(c *conn) error { return c.Bind(dn, password) })
}

// CreateUser creates an entry for the user under users.create_dn and
// returns it as stored. The directory assigns the id, so req.User.ID must
// be empty. With a password and the modify_operation method the password
// is set after the entry is added; if that fails the entry is removed
// again.
func (s *Store) CreateUser(ctx context.Context, req abi.CreateUserRequest) (abi.User, error) {
	if s.off || s.st.readOnly {
		return abi.User{}, fmt.Errorf("creating user: %w", s.readOnly())
	}
	if req.User.ID != "" {
		return abi.User{}, fault.InvalidRequest.WithMessage("the directory assigns user ids; leave id empty").WithField("user.id")
	}
	if req.User.Username == "" || len(req.User.Username) > maxUsernameLength {
		return abi.User{}, fault.InvalidRequest.WithMessagef("username must be 1 to %d bytes", maxUsernameLength).WithField("user.username")
	}
	if len(req.Password) > maxPasswordLength {
		return abi.User{}, fault.InvalidRequest.WithMessagef("password is longer than %d bytes", maxPasswordLength).WithField("password")
	}
	attrs, err := s.st.userToAttributes(req.User, nil)
	if err != nil {
		return abi.User{}, fmt.Errorf("creating user: %w", err)
	}
	rdnVals := attrs.get(s.st.users.RDNAttribute)
	if len(rdnVals) == 0 || rdnVals[0] == "" {
		return abi.User{}, fault.InvalidRequest.WithMessagef("the entry is named by %s, which the user does not set", s.st.users.RDNAttribute)
	}
	dn := s.st.users.RDNAttribute + "=" + goldap.EscapeDN(rdnVals[0]) + "," + s.st.users.CreateDN
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", s.st.users.ObjectClasses)
	for _, a := range attrs {
		if len(a.vals) > 0 {
			add.Attribute(a.name, a.vals)
		}
	}
	setPasswordLater := false
	if req.Password != "" {
		switch s.st.users.PasswordMethod {
		case PasswordModifyOperation:
			setPasswordLater = true
		case PasswordAttribute:
			add.Attribute(s.st.users.PasswordAttribute, []string{req.Password})
		case PasswordActiveDirectory:
			add.Attribute(s.st.users.PasswordAttribute, []string{adPassword(req.Password)})
		}
	}
	if err := s.do(ctx, s.service, false, func(c *conn) error { return c.Add(add) }); err != nil {
		return abi.User{}, fmt.Errorf("creating user: %w", ldapFault(err, "adding the entry"))
	}
	if setPasswordLater {
		if err := s.setPassword(ctx, dn, req.Password); err != nil {
			if derr := s.do(ctx, s.service, false, func(c *conn) error { return c.Del(goldap.NewDelRequest(dn, nil)) }); derr != nil {
				s.log.ErrorContext(ctx, "removing a user entry whose password could not be set", slog.String("dn", dn), slog.Any("err", derr))
			}
			return abi.User{}, fmt.Errorf("creating user: %w", err)
		}
	}
	e, err := s.entryByDN(ctx, dn)
	if err != nil {
		return abi.User{}, fmt.Errorf("creating user: reading it back: %w", err)
	}
	u, err := s.st.entryToUser(e)
	if err != nil {
		return abi.User{}, fmt.Errorf("creating user: %w", fault.Internal.WithMessage("the new entry is not a usable user").WithCause(err))
	}
	return u, nil
}

// UpdateUser replaces the mapped attributes of a user's entry (an empty
// field removes its attribute) and, when req.Password is set, the
// password. A changed naming attribute renames the entry first. Entries
// have no version: an update naming one fails with
// userstore.ErrVersionMismatch. Locking is the directory's policy and is
// not written.
func (s *Store) UpdateUser(ctx context.Context, req abi.UpdateUserRequest) (abi.User, error) {
	if s.off || s.st.readOnly {
		return abi.User{}, fmt.Errorf("updating user: %w", s.readOnly())
	}
	if req.User.Version != 0 {
		return abi.User{}, fmt.Errorf("updating user %q: directory entries have no version: %w", req.User.ID, userstore.ErrVersionMismatch)
	}
	if req.User.Username == "" || len(req.User.Username) > maxUsernameLength {
		return abi.User{}, fault.InvalidRequest.WithMessagef("username must be 1 to %d bytes", maxUsernameLength).WithField("user.username")
	}
	if len(req.Password) > maxPasswordLength {
		return abi.User{}, fault.InvalidRequest.WithMessagef("password is longer than %d bytes", maxPasswordLength).WithField("password")
	}
	cur, err := s.entryByID(ctx, req.User.ID)
	if err != nil {
		return abi.User{}, fmt.Errorf("updating user %q: %w", req.User.ID, err)
	}
	attrs, err := s.st.userToAttributes(req.User, cur)
	if err != nil {
		return abi.User{}, fmt.Errorf("updating user %q: %w", req.User.ID, err)
	}
	dn := cur.DN
	oldDN := ""
	if newRDN, renamed, err := s.st.renamed(cur.DN, attrs); err != nil {
		return abi.User{}, fmt.Errorf("updating user %q: %w", req.User.ID, err)
	} else if renamed {
		parent := parentDN(cur.DN)
		mod := goldap.NewModifyDNRequest(cur.DN, newRDN, true, "")
		if err := s.do(ctx, s.service, false, func(c *conn) error { return c.ModifyDN(mod) }); err != nil {
			return abi.User{}, fmt.Errorf("updating user %q: %w", req.User.ID, ldapFault(err, "renaming the entry"))
		}
		oldDN, dn = cur.DN, newRDN+","+parent
	}
	mod := goldap.NewModifyRequest(dn, nil)
	for _, a := range attrs {
		mod.Replace(a.name, a.vals)
	}
	if req.Password != "" {
		switch s.st.users.PasswordMethod {
		case PasswordAttribute:
			mod.Replace(s.st.users.PasswordAttribute, []string{req.Password})
		case PasswordActiveDirectory:
			mod.Replace(s.st.users.PasswordAttribute, []string{adPassword(req.Password)})
		}
	}
	if err := s.do(ctx, s.service, false, func(c *conn) error { return c.Modify(mod) }); err != nil {
		if oldDN != "" {
			s.renameBack(ctx, dn, oldDN)
		}
		return abi.User{}, fmt.Errorf("updating user %q: %w", req.User.ID, ldapFault(err, "changing the entry"))
	}
	if req.Password != "" && s.st.users.PasswordMethod == PasswordModifyOperation {
		if err := s.setPassword(ctx, dn, req.Password); err != nil {
			return abi.User{}, fmt.Errorf("updating user %q: the profile was changed but the password was not: %w", req.User.ID, err)
		}
	}
	return s.GetUser(ctx, abi.GetUserRequest{Tenant: req.Tenant, ID: req.User.ID})
}

// renameBack undoes a rename after the change that followed it failed.
func (s *Store) renameBack(ctx context.Context, dn, oldDN string) {
	parsed, err := goldap.ParseDN(oldDN)
	if err != nil || len(parsed.RDNs) == 0 {
		return
	}
	mod := goldap.NewModifyDNRequest(dn, rdnString(parsed.RDNs[0]), true, "")
	if err := s.do(ctx, s.service, false, func(c *conn) error { return c.ModifyDN(mod) }); err != nil {
		s.log.ErrorContext(ctx, "undoing the rename of a user entry", slog.String("dn", dn), slog.String("old_dn", oldDN), slog.Any("err", err))
	}
}

// DeleteUser removes the user's entry. Group memberships are the
// directory's to clean up (OpenLDAP: the refint overlay; Active Directory
// does it itself).
func (s *Store) DeleteUser(ctx context.Context, req abi.DeleteUserRequest) error {
	if s.off || s.st.readOnly {
		return fmt.Errorf("deleting user: %w", s.readOnly())
	}
	e, err := s.entryByID(ctx, req.ID)
	if err != nil {
		return fmt.Errorf("deleting user %q: %w", req.ID, err)
	}
	if err := s.do(ctx, s.service, false, func(c *conn) error { return c.Del(goldap.NewDelRequest(e.DN, nil)) }); err != nil {
		return fmt.Errorf("deleting user %q: %w", req.ID, ldapFault(err, "deleting the entry"))
	}
	return nil
}

// ListGroups returns one page of the groups under groups.base_dn in the
// directory's order or, when req.UserID is set, of the user's groups in
// name order, read by groups.membership. Without groups.base_dn there are
// no groups.
func (s *Store) ListGroups(ctx context.Context, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error) {
	if req.Limit < 0 {
		return abi.ListGroupsResponse{}, fault.InvalidRequest.WithMessage("limit must be >= 0").WithField("limit")
	}
	limit := store.Page{Limit: req.Limit}.Normalize().Limit
	offset, err := decodeCursor(req.Cursor)
	if err != nil {
		return abi.ListGroupsResponse{}, fault.InvalidRequest.WithMessage("malformed cursor").WithField("cursor").WithCause(err)
	}
	if s.off {
		if req.UserID != "" {
			return abi.ListGroupsResponse{}, fmt.Errorf("listing groups of user %q: %w", req.UserID, userstore.ErrNotFound)
		}
		return abi.ListGroupsResponse{Groups: []abi.Group{}}, nil
	}
	if s.st.groups.BaseDN == "" {
		if req.UserID != "" {
			if _, err := s.entryByID(ctx, req.UserID); err != nil {
				return abi.ListGroupsResponse{}, fmt.Errorf("listing groups of user %q: %w", req.UserID, err)
			}
		}
		return abi.ListGroupsResponse{Groups: []abi.Group{}}, nil
	}
	if req.UserID == "" {
		entries, more, err := s.pagedSearch(ctx, s.st.groups.BaseDN, goldap.ScopeWholeSubtree, s.st.groupFilter, s.st.groupAttrList, offset, limit)
		if err != nil {
			return abi.ListGroupsResponse{}, fmt.Errorf("listing groups: %w", ldapFault(err, "searching groups"))
		}
		resp := abi.ListGroupsResponse{Groups: s.toGroups(ctx, entries)}
		if more {
			resp.Next = encodeCursor(offset + len(entries))
		}
		return resp, nil
	}
	gs, err := s.userGroups(ctx, req.UserID)
	if err != nil {
		return abi.ListGroupsResponse{}, fmt.Errorf("listing groups of user %q: %w", req.UserID, err)
	}
	gs = gs[min(offset, len(gs)):]
	resp := abi.ListGroupsResponse{Groups: gs}
	if len(gs) > limit {
		resp.Groups = gs[:limit]
		resp.Next = encodeCursor(offset + limit)
	}
	return resp, nil
}

// userGroups lists a user's groups, sorted by name.
func (s *Store) userGroups(ctx context.Context, userID string) ([]abi.Group, error) {
	g := s.st.groups
	attrs := []string{s.st.users.Attributes.ID}
	if g.Membership == MembershipMemberOf {
		attrs = append(attrs, g.MemberOfAttribute)
	}
	f, ok := idFilter(s.st.users.Attributes.ID, s.st.users.Attributes.IDFormat, userID)
	if !ok {
		return nil, userstore.ErrNotFound
	}
	users, err := s.search(ctx, s.st.users.BaseDN, s.st.userScope, and([]string{s.st.userFilter, f}), attrs, 2)
	if err != nil {
		return nil, ldapFault(err, "searching the user")
	}
	if len(users) != 1 {
		return nil, userstore.ErrNotFound
	}
	var entries []*goldap.Entry
	if g.Membership == MembershipMember {
		filter := and([]string{s.st.groupFilter, "(" + g.MemberAttribute + "=" + goldap.EscapeFilter(users[0].DN) + ")"})
		entries, _, err = s.pagedSearch(ctx, g.BaseDN, goldap.ScopeWholeSubtree, filter, s.st.groupAttrList, 0, maxGroupsPerUser)
		if err != nil {
			return nil, ldapFault(err, "searching the user's groups")
		}
	} else {
		base, err := goldap.ParseDN(g.BaseDN)
		if err != nil {
			return nil, fault.Internal.WithCause(err)
		}
		dns := users[0].GetEqualFoldAttributeValues(g.MemberOfAttribute)
		for _, dn := range dns[:min(len(dns), maxGroupsPerUser)] {
			parsed, err := goldap.ParseDN(dn)
			if err != nil || !base.AncestorOfFold(parsed) && !base.EqualFold(parsed) {
				continue
			}
			es, err := s.searchBase(ctx, dn, s.st.groupFilter, s.st.groupAttrList)
			if err != nil {
				return nil, ldapFault(err, "reading the user's groups")
			}
			entries = append(entries, es...)
		}
	}
	gs := s.toGroups(ctx, entries)
	sortGroups(gs)
	return gs, nil
}

func (s *Store) toGroups(ctx context.Context, entries []*goldap.Entry) []abi.Group {
	out := make([]abi.Group, 0, len(entries))
	for _, e := range entries {
		g, err := s.st.entryToGroup(e)
		if err != nil {
			s.log.WarnContext(ctx, "skipping directory group", slog.String("dn", e.DN), slog.Any("err", err))
			continue
		}
		out = append(out, g)
	}
	return out
}

// setPassword sets a password with the Password Modify extended operation.
func (s *Store) setPassword(ctx context.Context, dn, password string) error {
	err := s.do(ctx, s.service, false, func(c *conn) error {
		_, err := c.PasswordModify(goldap.NewPasswordModifyRequest(dn, "", password))
		return err
	})
	if err != nil {
		return ldapFault(err, "setting the password")
	}
	return nil
}

// entryByID finds the user entry with the id, or userstore.ErrNotFound.
func (s *Store) entryByID(ctx context.Context, id string) (*goldap.Entry, error) {
	a := s.st.users.Attributes
	f, ok := idFilter(a.ID, a.IDFormat, id)
	if !ok {
		return nil, userstore.ErrNotFound
	}
	entries, err := s.search(ctx, s.st.users.BaseDN, s.st.userScope, and([]string{s.st.userFilter, f}), s.st.userAttrList, 2)
	if err != nil {
		return nil, ldapFault(err, "searching the user")
	}
	switch len(entries) {
	case 0:
		return nil, userstore.ErrNotFound
	case 1:
		return entries[0], nil
	}
	return nil, fault.Internal.WithMessage("the user id matches several directory entries")
}

// entryByDN reads one user entry by its DN.
func (s *Store) entryByDN(ctx context.Context, dn string) (*goldap.Entry, error) {
	entries, err := s.searchBase(ctx, dn, s.st.userFilter, s.st.userAttrList)
	if err != nil {
		return nil, ldapFault(err, "reading the entry")
	}
	if len(entries) != 1 {
		return nil, userstore.ErrNotFound
	}
	return entries[0], nil
}

// search runs a search returning at most sizeLimit entries.
func (s *Store) search(ctx context.Context, base string, scope int, filter string, attrs []string, sizeLimit int) ([]*goldap.Entry, error) {
	var out []*goldap.Entry
	err := s.do(ctx, s.service, true, func(c *conn) error {
		req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, sizeLimit, s.timeLimit(), false, filter, attrs, nil)
		res, err := c.Search(req)
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return nil
		}
		if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) && res != nil {
			out = res.Entries
			return nil
		}
		if err != nil {
			return err
		}
		out = res.Entries
		return nil
	})
	return out, err
}

// searchBase reads the entry at dn when it matches filter.
func (s *Store) searchBase(ctx context.Context, dn, filter string, attrs []string) ([]*goldap.Entry, error) {
	return s.search(ctx, dn, goldap.ScopeBaseObject, filter, attrs, 1)
}

// pagedSearch returns the entries offset to offset+limit of a search, read
// with the simple paged results control on one connection, and whether
// more follow. It stops reading as soon as it knows and then abandons the
// server's paging state (a last request with page size 0, RFC 2696
// section 3).
func (s *Store) pagedSearch(ctx context.Context, base string, scope int, filter string, attrs []string, offset, limit int) ([]*goldap.Entry, bool, error) {
	var out []*goldap.Entry
	more := false
	err := s.do(ctx, s.service, true, func(c *conn) error {
		out, more = out[:0], false
		paging := goldap.NewControlPaging(s.st.pageSize)
		req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, s.timeLimit(), false, filter, attrs, []goldap.Control{paging})
		seen := 0
		for {
			res, err := c.Search(req)
			if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, e := range res.Entries {
				seen++
				if seen <= offset {
					continue
				}
				if len(out) == limit {
					more = true
					break
				}
				out = append(out, e)
			}
			var cookie []byte
			if pc, ok := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging); ok {
				cookie = pc.Cookie
			}
			if len(cookie) == 0 {
				return nil
			}
			if more {
				paging.PagingSize = 0
				paging.SetCookie(cookie)
				_, err := c.Search(req)
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			paging.SetCookie(cookie)
		}
	})
	return out, more, err
}

// timeLimit is the server-side time limit of a search, in seconds.
func (s *Store) timeLimit() int {
	return max(1, int(s.st.timeout/time.Second))
}

// do runs fn on a connection of p within the operation deadline. When
// the context ends first the connection is closed, which ends fn. A
// network error on a connection that sat idle in the pool (the server may
// have restarted since) is retried once on a new connection when retry is
// true, as it is for reads and binds.
func (s *Store) do(ctx context.Context, p *pool, retry bool, fn func(c *conn) error) error {
	c, err := p.get(ctx)
	if err != nil {
		return err
	}
	err = s.run(ctx, c, fn)
	if err != nil && retry && c.reused && isNetwork(err) && !errors.Is(err, errOpTimeout) && ctx.Err() == nil {
		p.put(c, err)
		if c, err = p.fresh(ctx); err != nil {
			return err
		}
		err = s.run(ctx, c, fn)
	}
	p.put(c, err)
	return err
}

func (s *Store) run(ctx context.Context, c *conn, fn func(c *conn) error) error {
	timeout := s.st.timeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	c.SetTimeout(timeout)
	deadline := time.Now().Add(timeout)
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	err := fn(c)
	if !stop() {
		return fmt.Errorf("%w (%w)", ctx.Err(), goldap.NewError(goldap.ErrorNetwork, errors.New("connection closed for a cancelled operation")))
	}
	// go-ldap reports its request timeout as a network error; the clock
	// tells it apart from a broken connection.
	if isNetwork(err) && !time.Now().Before(deadline) {
		return fmt.Errorf("%w: %w", errOpTimeout, err)
	}
	return err
}

// errOpTimeout marks an operation that ran out of its timeout.
var errOpTimeout = errors.New("the directory did not answer within the operation timeout")

// readOnly is the refusal of a write in read-only mode (or by an
// instance that is off).
func (s *Store) readOnly() error {
	if s.off {
		return userstore.ErrReadOnly.WithMessage("the LDAP user store is not configured (no urls); it knows no users and takes no changes")
	}
	return userstore.ErrReadOnly.WithMessage(`the LDAP user store is read-only; set "mode": "read_write" in its configuration to allow changes`)
}

// ldapFault turns a directory error into the user store kind's faults.
func ldapFault(err error, doing string) error {
	var f *fault.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &f):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fault.Timeout.WithMessage("the directory did not answer in time").WithCause(fmt.Errorf("%s: %w", doing, err))
	case errors.Is(err, context.Canceled):
		return fault.Canceled.WithCause(fmt.Errorf("%s: %w", doing, err))
	case errors.Is(err, errOpTimeout):
		return fault.Timeout.WithMessage("the directory did not answer in time").WithCause(fmt.Errorf("%s: %w", doing, err))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fault.Timeout.WithMessage("the directory did not answer in time").WithCause(fmt.Errorf("%s: %w", doing, err))
	}
	cause := fmt.Errorf("%s: %w", doing, err)
	var le *goldap.Error
	if !errors.As(err, &le) {
		return fault.Unavailable.WithMessage("the directory is unavailable").WithCause(cause)
	}
	name := goldap.LDAPResultCodeMap[le.ResultCode]
	switch le.ResultCode {
	case goldap.LDAPResultNoSuchObject:
		return userstore.ErrNotFound.WithCause(cause)
	case goldap.LDAPResultEntryAlreadyExists:
		return userstore.ErrConflict.WithCause(cause)
	case goldap.LDAPResultInsufficientAccessRights:
		return fault.Forbidden.WithMessage("the directory's service account may not do this").WithCause(cause)
	case goldap.LDAPResultObjectClassViolation, goldap.LDAPResultConstraintViolation, goldap.LDAPResultInvalidAttributeSyntax,
		goldap.LDAPResultUndefinedAttributeType, goldap.LDAPResultNamingViolation, goldap.LDAPResultNotAllowedOnRDN,
		goldap.LDAPResultInvalidDNSyntax, goldap.LDAPResultAttributeOrValueExists, goldap.LDAPResultNotAllowedOnNonLeaf,
		goldap.LDAPResultUnwillingToPerform, goldap.LDAPResultInappropriateMatching, goldap.LDAPResultObjectClassModsProhibited:
		return fault.InvalidRequest.WithMessagef("the directory refused the change (%s)", name).WithCause(cause)
	case goldap.LDAPResultTimeLimitExceeded, goldap.LDAPResultTimeout:
		return fault.Timeout.WithMessage("the directory did not answer in time").WithCause(cause)
	case goldap.LDAPResultBusy, goldap.LDAPResultUnavailable, goldap.ErrorNetwork:
		return fault.Unavailable.WithMessage("the directory is unavailable").WithCause(cause)
	}
	return fault.Unavailable.WithMessagef("the directory failed (%s)", name).WithCause(cause)
}

// and joins filters with &, or returns the only one.
func and(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	return "(&" + strings.Join(parts, "") + ")"
}

func sortedAttrKeys(m map[string]string) []string {
	return sortedKeys(m)
}

// metrics are the instance's own metrics (the kernel counts the calls).
type metrics struct {
	authentications *prometheus.CounterVec
	dials           *prometheus.CounterVec
	open            *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	auth, err := extension.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "userstore_ldap", Name: "authentications_total",
		Help: "Password checks by outcome (authenticated, invalid_credentials, unknown_user, locked, disabled, error).",
	}, []string{"outcome"}))
	if err != nil {
		return nil, err
	}
	dials, err := extension.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "userstore_ldap", Name: "dials_total",
		Help: "Connections opened to the directory by pool (service, auth) and result (ok, error).",
	}, []string{"pool", "result"}))
	if err != nil {
		return nil, err
	}
	open, err := extension.RegisterCollector(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "latch", Subsystem: "userstore_ldap", Name: "connections_open",
		Help: "Connections to the directory open now, by pool (service, auth).",
	}, []string{"pool"}))
	if err != nil {
		return nil, err
	}
	return &metrics{authentications: auth, dials: dials, open: open}, nil
}

// instrument connects a pool's hooks to the metrics.
func (m *metrics) instrument(p *pool) *pool {
	ok, failed := m.dials.WithLabelValues(p.name, "ok"), m.dials.WithLabelValues(p.name, "error")
	open := m.open.WithLabelValues(p.name)
	p.onDial = func(err error) {
		if err != nil {
			failed.Inc()
			return
		}
		ok.Inc()
	}
	p.open = func(d int) { open.Add(float64(d)) }
	return p
}

var (
	_ userstore.Store         = (*Store)(nil)
	_ userstore.Writer        = (*Store)(nil)
	_ userstore.GroupLister   = (*Store)(nil)
	_ extension.Provisioner   = (*Store)(nil)
	_ extension.Cleaner       = (*Store)(nil)
	_ extension.HealthChecker = (*Store)(nil)
)
