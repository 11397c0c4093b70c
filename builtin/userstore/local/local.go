// Package local is the userstore.local extension: the kernel's own user
// store (the users kept in store.Store, the SQLite or PostgreSQL database)
// offered as the user store kind, so that a tenant's local accounts are
// found, authenticated and changed through the same interface as an LDAP
// directory or a WASM store.
//
// Passwords are argon2id hashes (kernel/password). AuthenticateUser spends
// the time of one hash for an unknown, disabled or locked user too, so that
// response times do not reveal which usernames exist, and it upgrades a
// hash made with old parameters after a successful login.
//
// The instance asks the kernel for two dependencies by name when it is
// provisioned: DepStore and DepPasswordHasher.
package local

import (
	"cmp"
	"context"
	"crypto/rand"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore"
)

// ID is the module id.
const ID extension.ID = "userstore.local"

// Names of the dependencies the instance takes from extension.Env.Dep when
// it is provisioned (the node passes them in extension.LoadOptions.Deps).
const (
	// DepStore names the kernel store holding the users: a store.Store,
	// or anything implementing Directory.
	DepStore = "store"
	// DepPasswordHasher names the password hasher: a *password.Hasher, or
	// anything implementing Hasher (such as a wrapper that bounds how many
	// hashes run at once).
	DepPasswordHasher = "password.hasher"
)

// ErrDependency means a dependency named above is missing or of the wrong
// type: a wiring mistake of the node, reported when the instance is
// provisioned.
var ErrDependency = errors.New("missing or mistyped dependency")

//go:embed config.schema.json
var configSchema []byte

// Module returns the userstore.local module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindUserStore,
		New:          func() any { return new(Store) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "The users kept in the Latch database, with argon2id passwords.",
	}
}

// Directory is what the user store needs of the kernel store; store.Store
// implements it.
type Directory interface {
	store.Users
	// GetTenantByName resolves the tenant names of requests to ids.
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	// ListGroups lists a tenant's groups, ordered by id.
	ListGroups(ctx context.Context, tenantID string, p store.Page) ([]store.Group, string, error)
	// ListUserGroups lists the groups a user belongs to, ordered by name.
	ListUserGroups(ctx context.Context, tenantID, userID string) ([]store.Group, error)
	// Ping reports whether the database is reachable.
	Ping(ctx context.Context) error
}

// Hasher hashes and verifies passwords; *password.Hasher implements it.
// When the value also has a SimulateVerify(password string) method (as
// *password.Hasher does), the store uses it for unknown users; otherwise it
// verifies against a hash of a random password made at provision time,
// which costs the same.
type Hasher interface {
	Hash(password string) (string, error)
	Verify(password, encoded string) (ok, needsRehash bool, err error)
}

// verifySimulator is the optional ability of a Hasher described above.
type verifySimulator interface {
	SimulateVerify(password string)
}

// lockedForever is the LockedUntil of an account locked through the user
// store interface, which knows only locked or not (abi.User.Locked).
var lockedForever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// maxScan bounds how many users one FindUsers call with an attribute
// filter reads: attributes are not indexed, so the filter runs over pages of
// users. A page that reaches the bound may hold fewer than Limit users while
// Next is set.
const maxScan = 10 * store.MaxPageLimit

// maxUpdateAttempts bounds the read-modify-write retries of an update that
// does not name a version.
const maxUpdateAttempts = 3

// Store is a userstore.local instance. Its exported fields are its
// configuration (see config.schema.json).
type Store struct {
	// ReadOnly refuses creates, updates and deletes (ErrReadOnly) and
	// keeps stored password hashes as they are on login.
	ReadOnly bool `json:"read_only,omitempty"`
	// MaxFailedLogins locks an account after that many wrong passwords in
	// a row; 0 turns locking off. Default 5.
	MaxFailedLogins *int `json:"max_failed_logins,omitempty"`
	// LockoutSeconds is how long a locked account stays locked. An
	// administrator unlocks it sooner by clearing locked_until. Default
	// 900.
	LockoutSeconds int `json:"lockout_seconds,omitempty"`

	dir      Directory
	hasher   Hasher
	simulate func(password string)
	log      *slog.Logger
	metrics  *metrics
}

// Provision takes the store and the hasher from env.
func (s *Store) Provision(ctx context.Context, env extension.Env) error {
	s.log = env.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	d, _ := env.Dep(DepStore)
	dir, ok := d.(Directory)
	if !ok {
		return fmt.Errorf("provisioning %s: %w: %q is %T, want a store.Store", ID, ErrDependency, DepStore, d)
	}
	h, _ := env.Dep(DepPasswordHasher)
	hasher, ok := h.(Hasher)
	if !ok {
		return fmt.Errorf("provisioning %s: %w: %q is %T, want a *password.Hasher", ID, ErrDependency, DepPasswordHasher, h)
	}
	s.dir, s.hasher = dir, hasher
	if sim, ok := h.(verifySimulator); ok {
		s.simulate = sim.SimulateVerify
	} else {
		dummy, err := hasher.Hash(rand.Text())
		if err != nil {
			return fmt.Errorf("provisioning %s: hashing the decoy password: %w", ID, err)
		}
		s.simulate = func(pw string) { _, _, _ = hasher.Verify(pw, dummy) }
	}
	m, err := newMetrics(env.Metrics)
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	s.metrics = m
	return nil
}

// Health reports whether the database is reachable.
func (s *Store) Health(ctx context.Context) error {
	if err := s.dir.Ping(ctx); err != nil {
		return fmt.Errorf("pinging the user database: %w", storeFault(err))
	}
	return nil
}

// GetUser returns the user with the id, or userstore.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, req abi.GetUserRequest) (abi.User, error) {
	tid, err := s.tenantID(ctx, req.Tenant)
	if err != nil {
		return abi.User{}, fmt.Errorf("getting user: %w", err)
	}
	u, err := s.dir.GetUser(ctx, tid, req.ID)
	if err != nil {
		return abi.User{}, fmt.Errorf("getting user %q: %w", req.ID, storeFault(err))
	}
	return toABI(u, time.Now()), nil
}

// FindUsers returns one page of the users matching every filter of req, in
// id order. An attribute filter matches a string attribute exactly, a
// number or boolean by its JSON text, and an array when one of its elements
// matches.
func (s *Store) FindUsers(ctx context.Context, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	if req.Limit < 0 {
		return abi.FindUsersResponse{}, fault.InvalidRequest.WithMessage("limit must be >= 0").WithField("limit")
	}
	limit := store.Page{Limit: req.Limit}.Normalize().Limit
	tid, err := s.tenantID(ctx, req.Tenant)
	if errors.Is(err, userstore.ErrNotFound) {
		return abi.FindUsersResponse{Users: []abi.User{}}, nil
	}
	if err != nil {
		return abi.FindUsersResponse{}, fmt.Errorf("finding users: %w", err)
	}
	now := time.Now()
	q := store.UserQuery{Username: req.Username, Email: req.Email, Page: store.Page{Limit: limit, After: req.Cursor}}
	if len(req.Attributes) == 0 {
		us, next, err := s.dir.ListUsers(ctx, tid, q)
		if err != nil {
			return abi.FindUsersResponse{}, fmt.Errorf("finding users: %w", storeFault(err))
		}
		out := make([]abi.User, len(us))
		for i, u := range us {
			out[i] = toABI(u, now)
		}
		return abi.FindUsersResponse{Users: out, Next: next}, nil
	}

	// Attributes are not indexed: filter pages of users until the page
	// is full, the users run out, or maxScan users were read.
	out := make([]abi.User, 0, limit)
	q.Limit = min(max(4*limit, store.DefaultPageLimit), store.MaxPageLimit)
	for scanned := 0; ; {
		us, next, err := s.dir.ListUsers(ctx, tid, q)
		if err != nil {
			return abi.FindUsersResponse{}, fmt.Errorf("finding users: %w", storeFault(err))
		}
		for i, u := range us {
			scanned++
			q.After = u.ID
			if !attributesMatch(u.Attributes, req.Attributes) {
				continue
			}
			out = append(out, toABI(u, now))
			if len(out) == limit {
				if i < len(us)-1 || next != "" {
					return abi.FindUsersResponse{Users: out, Next: u.ID}, nil
				}
				return abi.FindUsersResponse{Users: out}, nil
			}
		}
		if next == "" {
			return abi.FindUsersResponse{Users: out}, nil
		}
		if scanned >= maxScan {
			return abi.FindUsersResponse{Users: out, Next: q.After}, nil
		}
	}
}

// AuthenticateUser checks a password. Unknown users, disabled and locked
// accounts and accounts without a password cost one argon2id hash, as a
// real check does, so that timing does not tell them apart. A successful
// login with a hash made under other parameters stores a fresh hash (unless
// the store is read-only); failing to do so is logged, not returned.
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
	unknown := func() (abi.AuthenticateUserResponse, error) {
		s.simulate(req.Password)
		return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
	}
	tid, err := s.tenantID(ctx, req.Tenant)
	if errors.Is(err, userstore.ErrNotFound) {
		return unknown()
	}
	if err != nil {
		return abi.AuthenticateUserResponse{}, fmt.Errorf("authenticating user: %w", err)
	}
	u, err := s.dir.GetUserByUsername(ctx, tid, req.Username)
	if errors.Is(err, store.ErrNotFound) {
		return unknown()
	}
	if err != nil {
		return abi.AuthenticateUserResponse{}, fmt.Errorf("authenticating user: %w", storeFault(err))
	}
	now := time.Now()
	refuse := func(outcome string) (abi.AuthenticateUserResponse, error) {
		s.simulate(req.Password)
		return abi.AuthenticateUserResponse{Outcome: outcome}, nil
	}
	switch {
	case !u.Enabled:
		return refuse(abi.UserDisabled)
	case u.LockedUntil.After(now):
		return refuse(abi.UserLocked)
	case u.PasswordHash == "":
		return refuse(abi.UserInvalidCredentials)
	}
	ok, rehash, err := s.hasher.Verify(req.Password, u.PasswordHash)
	switch {
	case errors.Is(err, password.ErrTooLong):
		return abi.AuthenticateUserResponse{Outcome: abi.UserInvalidCredentials}, nil
	case err != nil:
		return abi.AuthenticateUserResponse{}, fmt.Errorf("authenticating user %q: %w", u.ID,
			fault.Internal.WithMessage("the stored password hash is unusable").WithCause(err))
	case !ok:
		s.countFailure(ctx, u, now)
		return abi.AuthenticateUserResponse{Outcome: abi.UserInvalidCredentials}, nil
	}
	if !s.ReadOnly && failedLogins(u) > 0 {
		u = s.resetFailures(ctx, u)
	}
	if rehash && !s.ReadOnly {
		u = s.rehash(ctx, u, req.Password)
	}
	au := toABI(u, now)
	return abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, User: &au}, nil
}

// attrFailedLogins is the user attribute counting wrong passwords in a
// row.
const attrFailedLogins = "latch.failed_logins"

// defaultLockoutSeconds is LockoutSeconds when unset: 15 minutes.
const defaultLockoutSeconds = 900

func failedLogins(u store.User) int {
	switch n := u.Attributes[attrFailedLogins].(type) {
	case float64:
		return int(n)
	case int:
		return n
	case int64:
		return int(n)
	}
	return 0
}

// countFailure records a wrong password and locks the account when the
// count reaches MaxFailedLogins. A concurrent change of the user is
// retried, so parallel guesses all count.
func (s *Store) countFailure(ctx context.Context, u store.User, now time.Time) {
	limit := 5
	if s.MaxFailedLogins != nil {
		limit = *s.MaxFailedLogins
	}
	if limit <= 0 || s.ReadOnly {
		return
	}
	for range 3 {
		n := failedLogins(u) + 1
		if u.Attributes == nil {
			u.Attributes = map[string]any{}
		}
		u.Attributes[attrFailedLogins] = n
		if n >= limit {
			u.Attributes[attrFailedLogins] = 0
			u.LockedUntil = now.Add(time.Duration(cmp.Or(s.LockoutSeconds, defaultLockoutSeconds)) * time.Second)
		}
		_, err := s.dir.UpdateUser(ctx, u)
		if err == nil {
			if n >= limit {
				s.metrics.lockouts.Inc()
				s.log.InfoContext(ctx, "account locked after failed logins", slog.String("user_id", u.ID), slog.Int("failures", n))
			}
			return
		}
		if !errors.Is(err, store.ErrVersionMismatch) {
			s.log.WarnContext(ctx, "counting a failed login", slog.String("user_id", u.ID), slog.Any("err", err))
			return
		}
		fresh, err := s.dir.GetUser(ctx, u.TenantID, u.ID)
		if err != nil {
			return
		}
		u = fresh
	}
}

// resetFailures clears the count of wrong passwords after a success.
func (s *Store) resetFailures(ctx context.Context, u store.User) store.User {
	u.Attributes[attrFailedLogins] = 0
	updated, err := s.dir.UpdateUser(ctx, u)
	if err != nil {
		return u
	}
	return updated
}

// rehash stores a hash of pw under the hasher's current parameters and
// returns the user as stored. A concurrent change of the user wins: the
// upgrade is retried at the next login.
func (s *Store) rehash(ctx context.Context, u store.User, pw string) store.User {
	hash, err := s.hasher.Hash(pw)
	if err != nil {
		s.log.WarnContext(ctx, "upgrading password hash", slog.String("user_id", u.ID), slog.Any("err", err))
		return u
	}
	u.PasswordHash = hash
	updated, err := s.dir.UpdateUser(ctx, u)
	switch {
	case errors.Is(err, store.ErrVersionMismatch):
		return u
	case err != nil:
		s.log.WarnContext(ctx, "upgrading password hash", slog.String("user_id", u.ID), slog.Any("err", err))
		return u
	}
	s.metrics.rehashes.Inc()
	return updated
}

// CreateUser stores a new user, hashing its password.
func (s *Store) CreateUser(ctx context.Context, req abi.CreateUserRequest) (abi.User, error) {
	if s.ReadOnly {
		return abi.User{}, fmt.Errorf("creating user: %w", userstore.ErrReadOnly)
	}
	tid, err := s.tenantID(ctx, req.Tenant)
	if err != nil {
		return abi.User{}, fmt.Errorf("creating user: %w", err)
	}
	u := fromABI(tid, req.User, store.User{})
	if req.Password != "" {
		if u.PasswordHash, err = s.hash(req.Password); err != nil {
			return abi.User{}, fmt.Errorf("creating user: %w", err)
		}
	}
	created, err := s.dir.CreateUser(ctx, u)
	if err != nil {
		return abi.User{}, fmt.Errorf("creating user: %w", storeFault(err))
	}
	return toABI(created, time.Now()), nil
}

// UpdateUser replaces a user's record, keeping its password hash unless
// req.Password is set. When req.User.Version is 0 a concurrent change is
// retried (last writer wins); otherwise a stale version is
// userstore.ErrVersionMismatch.
func (s *Store) UpdateUser(ctx context.Context, req abi.UpdateUserRequest) (abi.User, error) {
	if s.ReadOnly {
		return abi.User{}, fmt.Errorf("updating user: %w", userstore.ErrReadOnly)
	}
	tid, err := s.tenantID(ctx, req.Tenant)
	if err != nil {
		return abi.User{}, fmt.Errorf("updating user: %w", err)
	}
	var hash string
	if req.Password != "" {
		if hash, err = s.hash(req.Password); err != nil {
			return abi.User{}, fmt.Errorf("updating user %q: %w", req.User.ID, err)
		}
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.dir.GetUser(ctx, tid, req.User.ID)
		if err != nil {
			return abi.User{}, fmt.Errorf("updating user %q: %w", req.User.ID, storeFault(err))
		}
		if req.User.Version != 0 && req.User.Version != cur.Version {
			return abi.User{}, fmt.Errorf("updating user %q: stored version is %d, not %d: %w",
				req.User.ID, cur.Version, req.User.Version, userstore.ErrVersionMismatch)
		}
		u := fromABI(tid, req.User, cur)
		u.Version = cur.Version
		if hash != "" {
			u.PasswordHash = hash
		}
		updated, err := s.dir.UpdateUser(ctx, u)
		if errors.Is(err, store.ErrVersionMismatch) && req.User.Version == 0 && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return abi.User{}, fmt.Errorf("updating user %q: %w", req.User.ID, storeFault(err))
		}
		return toABI(updated, time.Now()), nil
	}
}

// DeleteUser removes a user with its group memberships, role assignments,
// sessions and consents.
func (s *Store) DeleteUser(ctx context.Context, req abi.DeleteUserRequest) error {
	if s.ReadOnly {
		return fmt.Errorf("deleting user: %w", userstore.ErrReadOnly)
	}
	tid, err := s.tenantID(ctx, req.Tenant)
	if err != nil {
		return fmt.Errorf("deleting user: %w", err)
	}
	if err := s.dir.DeleteUser(ctx, tid, req.ID); err != nil {
		return fmt.Errorf("deleting user %q: %w", req.ID, storeFault(err))
	}
	return nil
}

// ListGroups returns one page of the tenant's groups in id order or, when
// req.UserID is set, of the user's groups in name order (the cursor is then
// an offset).
func (s *Store) ListGroups(ctx context.Context, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error) {
	if req.Limit < 0 {
		return abi.ListGroupsResponse{}, fault.InvalidRequest.WithMessage("limit must be >= 0").WithField("limit")
	}
	limit := store.Page{Limit: req.Limit}.Normalize().Limit
	tid, err := s.tenantID(ctx, req.Tenant)
	if errors.Is(err, userstore.ErrNotFound) {
		return abi.ListGroupsResponse{Groups: []abi.Group{}}, nil
	}
	if err != nil {
		return abi.ListGroupsResponse{}, fmt.Errorf("listing groups: %w", err)
	}
	if req.UserID == "" {
		gs, next, err := s.dir.ListGroups(ctx, tid, store.Page{Limit: limit, After: req.Cursor})
		if err != nil {
			return abi.ListGroupsResponse{}, fmt.Errorf("listing groups: %w", storeFault(err))
		}
		return abi.ListGroupsResponse{Groups: toGroups(gs), Next: next}, nil
	}
	offset := 0
	if req.Cursor != "" {
		if offset, err = strconv.Atoi(req.Cursor); err != nil || offset < 0 {
			return abi.ListGroupsResponse{}, fault.InvalidRequest.WithMessage("malformed cursor").WithField("cursor")
		}
	}
	gs, err := s.dir.ListUserGroups(ctx, tid, req.UserID)
	if err != nil {
		return abi.ListGroupsResponse{}, fmt.Errorf("listing groups of user %q: %w", req.UserID, storeFault(err))
	}
	gs = gs[min(offset, len(gs)):]
	next := ""
	if len(gs) > limit {
		gs = gs[:limit]
		next = strconv.Itoa(offset + limit)
	}
	return abi.ListGroupsResponse{Groups: toGroups(gs), Next: next}, nil
}

// IsReadOnly reports whether the store is configured read-only.
func (s *Store) IsReadOnly() bool { return s.ReadOnly }

// ReadAttributes returns the named attributes of a user's record (the
// claims an administrator maps to attributes of this store).
func (s *Store) ReadAttributes(ctx context.Context, tenant, id string, names []string) (map[string]any, error) {
	tid, err := s.tenantID(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading attributes: %w", err)
	}
	u, err := s.dir.GetUser(ctx, tid, id)
	if err != nil {
		return nil, fmt.Errorf("reading attributes of user %q: %w", id, storeFault(err))
	}
	out := make(map[string]any, len(names))
	for _, n := range names {
		if v, ok := u.Attributes[n]; ok {
			out[n] = v
		}
	}
	return out, nil
}

// hash hashes a new password; a password over password.MaxLength is the
// client's mistake.
func (s *Store) hash(pw string) (string, error) {
	h, err := s.hasher.Hash(pw)
	if errors.Is(err, password.ErrTooLong) {
		return "", fault.InvalidRequest.WithMessagef("password is longer than %d bytes", password.MaxLength).WithField("password").WithCause(err)
	}
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return h, nil
}

// tenantID resolves a tenant name. An unknown tenant is a not-found fault
// (matching userstore.ErrNotFound).
func (s *Store) tenantID(ctx context.Context, name string) (string, error) {
	t, err := s.dir.GetTenantByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", fault.NotFound.WithMessagef("tenant %q not found", name).WithCause(err)
	}
	if err != nil {
		return "", fmt.Errorf("resolving tenant %q: %w", name, storeFault(err))
	}
	return t.ID, nil
}

// storeFault turns a kernel store error into the user store kind's faults:
// the store sentinels into userstore's, and an unclassified failure (the
// database is down) into fault.Unavailable. Context errors pass unchanged.
func storeFault(err error) error {
	var f *fault.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &f):
		return err
	case errors.Is(err, store.ErrNotFound):
		return userstore.ErrNotFound.WithCause(err)
	case errors.Is(err, store.ErrConflict):
		return userstore.ErrConflict.WithCause(err)
	case errors.Is(err, store.ErrVersionMismatch):
		return userstore.ErrVersionMismatch.WithCause(err)
	case errors.Is(err, store.ErrInvalid):
		return fault.InvalidRequest.WithMessage("the user record is not valid").WithCause(err)
	}
	return fault.Unavailable.WithMessage("the user database is unavailable").WithCause(err)
}

// toABI returns the wire form of u; Locked is computed at now.
func toABI(u store.User, now time.Time) abi.User {
	return abi.User{
		ID:            u.ID,
		Username:      u.Username,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		PhoneNumber:   u.PhoneNumber,
		DisplayName:   u.DisplayName,
		GivenName:     u.GivenName,
		FamilyName:    u.FamilyName,
		Enabled:       u.Enabled,
		Locked:        u.LockedUntil.After(now),
		Attributes:    maps.Clone(u.Attributes),
		Version:       u.Version,
	}
}

// fromABI returns base with the fields of in written onto it. A lock set
// through in.Locked lasts until it is cleared; clearing it unlocks an
// account locked until any time.
func fromABI(tenantID string, in abi.User, base store.User) store.User {
	u := base
	u.ID = in.ID
	u.TenantID = tenantID
	u.Username = in.Username
	u.Email = in.Email
	u.EmailVerified = in.EmailVerified
	u.PhoneNumber = in.PhoneNumber
	u.DisplayName = in.DisplayName
	u.GivenName = in.GivenName
	u.FamilyName = in.FamilyName
	u.Enabled = in.Enabled
	u.Attributes = maps.Clone(in.Attributes)
	locked := base.LockedUntil.After(time.Now())
	switch {
	case in.Locked && !locked:
		u.LockedUntil = lockedForever
	case !in.Locked && locked:
		u.LockedUntil = time.Time{}
	}
	return u
}

func toGroups(gs []store.Group) []abi.Group {
	out := make([]abi.Group, len(gs))
	for i, g := range gs {
		out[i] = abi.Group{ID: g.ID, Name: g.Name, Description: g.Description}
	}
	return out
}

// attributesMatch reports whether every wanted attribute matches.
func attributesMatch(attrs map[string]any, want map[string]string) bool {
	for k, w := range want {
		v, ok := attrs[k]
		if !ok || !valueMatches(v, w) {
			return false
		}
	}
	return true
}

func valueMatches(v any, want string) bool {
	switch x := v.(type) {
	case string:
		return x == want
	case []any:
		for _, e := range x {
			if valueMatches(e, want) {
				return true
			}
		}
		return false
	case nil, map[string]any:
		return false
	}
	b, err := json.Marshal(v)
	return err == nil && string(b) == want
}

// metrics are the instance's own metrics (the kernel counts the calls).
type metrics struct {
	authentications *prometheus.CounterVec
	rehashes        prometheus.Counter
	lockouts        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	auth, err := extension.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "userstore_local", Name: "authentications_total",
		Help: "Password checks by outcome (authenticated, invalid_credentials, unknown_user, locked, disabled, error).",
	}, []string{"outcome"}))
	if err != nil {
		return nil, err
	}
	rehashes, err := extension.RegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "userstore_local", Name: "rehashes_total",
		Help: "Password hashes upgraded to the current argon2id parameters after a login.",
	}))
	if err != nil {
		return nil, err
	}
	lockouts, err := extension.RegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "userstore_local", Name: "lockouts_total",
		Help: "Accounts locked after too many wrong passwords in a row.",
	}))
	if err != nil {
		return nil, err
	}
	return &metrics{authentications: auth, rehashes: rehashes, lockouts: lockouts}, nil
}

var (
	_ userstore.Store            = (*Store)(nil)
	_ userstore.Writer           = (*Store)(nil)
	_ userstore.GroupLister      = (*Store)(nil)
	_ userstore.AttributeReader  = (*Store)(nil)
	_ userstore.ReadOnlyReporter = (*Store)(nil)
	_ extension.Provisioner      = (*Store)(nil)
	_ extension.HealthChecker    = (*Store)(nil)
	_ Hasher                     = (*password.Hasher)(nil)
	_ verifySimulator            = (*password.Hasher)(nil)
	_ Directory                  = (store.Store)(nil)
)
