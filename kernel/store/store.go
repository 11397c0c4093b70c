// Package store defines the durable state of Latch: the records it keeps and
// the interface every storage backend implements. The kernel ships two
// backends, SQLite (kernel/store/sqlite, the embedded default) and PostgreSQL
// (kernel/store/postgres, for clusters); both pass the same conformance suite
// in kernel/store/storetest.
//
// Every record except a Tenant belongs to one tenant, and every call that
// reads or writes such a record names the tenant. A record of one tenant is
// never visible through another tenant's id.
//
// Backends never leave a half-written record: each method is one transaction.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Sentinel errors returned by every backend. Check them with errors.Is; a
// backend may wrap them with detail.
var (
	// ErrNotFound means the record asked for does not exist (in this tenant).
	ErrNotFound = errors.New("not found")
	// ErrConflict means a record with the same unique key (tenant name,
	// username, client id, group or role name, ...) already exists.
	ErrConflict = errors.New("already exists")
	// ErrVersionMismatch means an update named a version that is no longer
	// the record's current version (optimistic concurrency).
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrInvalid means the record breaks a rule the store enforces (an empty
	// required field, a reference to a record of another tenant).
	ErrInvalid = errors.New("invalid record")
)

// Store is the whole of Latch's durable state. Implementations must be safe
// for concurrent use.
type Store interface {
	Tenants
	Users
	Groups
	Roles
	Clients
	Sessions
	Tokens
	SigningKeys
	Consents
	AuditLog
	Bundles
	PluginKV
	Flows
	Links
	WebAuthnCredentials
	ClaimDialects

	// Migrate brings the schema to the version this build expects. It is
	// safe to call on an up-to-date schema and safe to call from several
	// processes at once.
	Migrate(ctx context.Context) error
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Page asks for one page of a listing. Listings are ordered by a stable key
// (normally the record id); After is the cursor returned with the previous
// page (empty for the first page). Limit 0 means the backend's default (100);
// backends cap Limit at 1000.
type Page struct {
	Limit int
	After string
}

// DefaultPageLimit and MaxPageLimit bound listings.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// Normalize returns p with Limit clamped to [1, MaxPageLimit].
func (p Page) Normalize() Page {
	if p.Limit <= 0 {
		p.Limit = DefaultPageLimit
	}
	if p.Limit > MaxPageLimit {
		p.Limit = MaxPageLimit
	}
	return p
}

// Tenant is an isolated realm: its own users, clients, keys and settings.
// The default tenant has the name "default" and is served at the root path;
// others are served under /t/{name}/.
type Tenant struct {
	ID          string
	Name        string // unique, lowercase [a-z0-9-], 1..63 characters
	DisplayName string
	Enabled     bool
	Settings    map[string]any
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// DefaultTenantName is the name of the tenant created at first start.
const DefaultTenantName = "default"

// Tenants stores tenants.
type Tenants interface {
	CreateTenant(ctx context.Context, t Tenant) (Tenant, error)
	GetTenant(ctx context.Context, id string) (Tenant, error)
	GetTenantByName(ctx context.Context, name string) (Tenant, error)
	ListTenants(ctx context.Context, p Page) ([]Tenant, string, error)
	UpdateTenant(ctx context.Context, t Tenant) (Tenant, error)
	// DeleteTenant removes the tenant and every record it owns.
	DeleteTenant(ctx context.Context, id string) error
}

// User is a local account. Passwords are never stored in clear: PasswordHash
// holds an argon2id PHC string (see kernel/password).
type User struct {
	ID            string
	TenantID      string
	Username      string // unique per tenant, compared case-insensitively
	PasswordHash  string
	Email         string
	EmailVerified bool
	PhoneNumber   string
	DisplayName   string
	GivenName     string
	FamilyName    string
	Enabled       bool
	// LockedUntil, when in the future, means the account is locked.
	LockedUntil time.Time
	// Attributes holds claims that have no column of their own.
	Attributes map[string]any
	// Version increases by one on every update; it backs ETags and
	// optimistic concurrency (UpdateUser refuses a stale version).
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UserQuery filters ListUsers. Empty fields do not filter.
type UserQuery struct {
	// Username matches exactly (case-insensitively).
	Username string
	// Email matches exactly (case-insensitively).
	Email string
	Page
}

// Users stores user accounts.
type Users interface {
	// CreateUser stores u with a new id (u.ID is ignored when empty, kept
	// when set) and Version 1. A taken username is ErrConflict.
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, tenantID, id string) (User, error)
	GetUserByUsername(ctx context.Context, tenantID, username string) (User, error)
	ListUsers(ctx context.Context, tenantID string, q UserQuery) ([]User, string, error)
	CountUsers(ctx context.Context, tenantID string) (int, error)
	// UpdateUser replaces the stored user with u when u.Version equals the
	// stored version, and returns it with Version+1. A zero u.Version skips
	// the check.
	UpdateUser(ctx context.Context, u User) (User, error)
	// DeleteUser removes the user, its group memberships, role assignments,
	// sessions and consents.
	DeleteUser(ctx context.Context, tenantID, id string) error
}

// Group is a named set of users.
type Group struct {
	ID          string
	TenantID    string
	Name        string // unique per tenant
	Description string
	Attributes  map[string]any
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Groups stores groups and their members.
type Groups interface {
	CreateGroup(ctx context.Context, g Group) (Group, error)
	GetGroup(ctx context.Context, tenantID, id string) (Group, error)
	GetGroupByName(ctx context.Context, tenantID, name string) (Group, error)
	ListGroups(ctx context.Context, tenantID string, p Page) ([]Group, string, error)
	UpdateGroup(ctx context.Context, g Group) (Group, error)
	DeleteGroup(ctx context.Context, tenantID, id string) error
	// AddGroupMember is idempotent. Both records must exist in the tenant.
	AddGroupMember(ctx context.Context, tenantID, groupID, userID string) error
	// RemoveGroupMember is idempotent.
	RemoveGroupMember(ctx context.Context, tenantID, groupID, userID string) error
	ListGroupMembers(ctx context.Context, tenantID, groupID string, p Page) ([]User, string, error)
	ListUserGroups(ctx context.Context, tenantID, userID string) ([]Group, error)
}

// Role is a named set of permissions, assigned to users and groups.
type Role struct {
	ID          string
	TenantID    string
	Name        string // unique per tenant
	Description string
	Permissions []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Subject kinds a role may be assigned to.
const (
	SubjectUser  = "user"
	SubjectGroup = "group"
)

// Roles stores roles and their assignments.
type Roles interface {
	CreateRole(ctx context.Context, r Role) (Role, error)
	GetRole(ctx context.Context, tenantID, id string) (Role, error)
	GetRoleByName(ctx context.Context, tenantID, name string) (Role, error)
	ListRoles(ctx context.Context, tenantID string, p Page) ([]Role, string, error)
	UpdateRole(ctx context.Context, r Role) (Role, error)
	DeleteRole(ctx context.Context, tenantID, id string) error
	// AssignRole is idempotent. kind is SubjectUser or SubjectGroup and the
	// subject must exist in the tenant.
	AssignRole(ctx context.Context, tenantID, roleID, kind, subjectID string) error
	UnassignRole(ctx context.Context, tenantID, roleID, kind, subjectID string) error
	// ListSubjectRoles lists the roles assigned directly to the subject.
	ListSubjectRoles(ctx context.Context, tenantID, kind, subjectID string) ([]Role, error)
	// ListEffectiveUserRoles lists the roles of a user, directly and through
	// its groups, without duplicates, ordered by name.
	ListEffectiveUserRoles(ctx context.Context, tenantID, userID string) ([]Role, error)
}

// Client is an application registered with Latch (an OAuth2 client, a SAML
// service provider, an API consumer).
type Client struct {
	ID       string
	TenantID string
	// ClientID is the public identifier, unique per tenant.
	ClientID string
	Name     string
	// SecretHash is the hash of the client secret (see kernel/secret);
	// empty for public clients.
	SecretHash              string
	Public                  bool
	FirstParty              bool
	RedirectURIs            []string
	GrantTypes              []string
	ResponseTypes           []string
	Scopes                  []string
	Audience                []string
	TokenEndpointAuthMethod string
	// Settings holds protocol-specific options (token lifetimes, SAML SP
	// metadata, ...).
	Settings  map[string]any
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Clients stores applications.
type Clients interface {
	CreateClient(ctx context.Context, c Client) (Client, error)
	GetClient(ctx context.Context, tenantID, id string) (Client, error)
	GetClientByClientID(ctx context.Context, tenantID, clientID string) (Client, error)
	ListClients(ctx context.Context, tenantID string, p Page) ([]Client, string, error)
	UpdateClient(ctx context.Context, c Client) (Client, error)
	DeleteClient(ctx context.Context, tenantID, id string) error
}

// Session is a single-sign-on session of a user.
type Session struct {
	ID         string
	TenantID   string
	UserID     string
	AuthTime   time.Time
	ACR        string
	AMR        []string
	IP         string
	UserAgent  string
	Data       map[string]any
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// Sessions stores SSO sessions. Expired sessions are never returned.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) (Session, error)
	GetSession(ctx context.Context, tenantID, id string) (Session, error)
	// TouchSession sets LastSeenAt and ExpiresAt.
	TouchSession(ctx context.Context, tenantID, id string, seen, expires time.Time) error
	ListUserSessions(ctx context.Context, tenantID, userID string) ([]Session, error)
	DeleteSession(ctx context.Context, tenantID, id string) error
	DeleteUserSessions(ctx context.Context, tenantID, userID string) (int, error)
	// DeleteExpiredSessions removes sessions that expired before t.
	DeleteExpiredSessions(ctx context.Context, t time.Time) (int, error)
}

// Token is a protocol artefact kept server-side: an authorization code, an
// access or refresh token's record, a PKCE or OIDC session, a device code.
// Protocol front doors own the meaning of Kind and Data.
type Token struct {
	// Kind names the artefact ("code", "access", "refresh", "pkce", ...).
	Kind string
	// Key is the artefact's lookup key, unique per tenant and kind (for
	// tokens, a signature or hash, never the token itself).
	Key       string
	TenantID  string
	RequestID string
	ClientID  string
	Subject   string
	SessionID string
	Active    bool
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Tokens stores protocol artefacts. Expired tokens are never returned.
type Tokens interface {
	// CreateToken stores t; a taken (tenant, kind, key) is ErrConflict.
	CreateToken(ctx context.Context, t Token) error
	GetToken(ctx context.Context, tenantID, kind, key string) (Token, error)
	DeleteToken(ctx context.Context, tenantID, kind, key string) error
	// DeactivateToken marks one token inactive (kept for reuse detection).
	DeactivateToken(ctx context.Context, tenantID, kind, key string) error
	// DeactivateByRequestID marks every token of the kind issued for the
	// request inactive and returns how many changed.
	DeactivateByRequestID(ctx context.Context, tenantID, kind, requestID string) (int, error)
	DeleteByRequestID(ctx context.Context, tenantID, kind, requestID string) (int, error)
	// DeactivateBySubject marks every token of the kind issued to the
	// subject inactive (only those of clientID when it is not empty) and
	// returns how many changed: a password change or a revoked consent
	// ends the grants the user gave.
	DeactivateBySubject(ctx context.Context, tenantID, kind, subject, clientID string) (int, error)
	DeleteExpiredTokens(ctx context.Context, t time.Time) (int, error)
}

// Key states in the rotation life cycle.
const (
	// KeyNext keys are published in the JWKS but not yet used to sign.
	KeyNext = "next"
	// KeyActive is the one key of a tenant and algorithm that signs.
	KeyActive = "active"
	// KeyRetiring keys no longer sign but stay published until NotAfter so
	// that tokens they signed can still be verified.
	KeyRetiring = "retiring"
)

// SigningKey is an asymmetric key a tenant signs with. The private half is
// stored encrypted (PrivateSealed, see kernel/secret); PublicJWK is the
// public half as a JSON Web Key.
type SigningKey struct {
	ID            string // the JWK "kid"
	TenantID      string
	Algorithm     string // ES256, RS256, EdDSA
	State         string
	PrivateSealed []byte
	PublicJWK     []byte
	CreatedAt     time.Time
	// NotAfter is when a retiring key stops being published.
	NotAfter time.Time
}

// SigningKeys stores signing keys.
type SigningKeys interface {
	CreateSigningKey(ctx context.Context, k SigningKey) error
	GetSigningKey(ctx context.Context, tenantID, id string) (SigningKey, error)
	// ListSigningKeys lists the tenant's keys that are not past NotAfter,
	// newest first.
	ListSigningKeys(ctx context.Context, tenantID string) ([]SigningKey, error)
	// RotateSigningKeys atomically makes next the active key of its tenant
	// and algorithm, and moves the previously active key of that algorithm
	// to KeyRetiring with NotAfter set to retireAt. next must already be
	// stored.
	RotateSigningKeys(ctx context.Context, tenantID, nextID string, retireAt time.Time) error
	// DeleteExpiredSigningKeys removes retiring keys past NotAfter.
	DeleteExpiredSigningKeys(ctx context.Context, t time.Time) (int, error)
}

// Consent records the scopes a user granted a client.
type Consent struct {
	TenantID  string
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
	// ExpiresAt zero means the consent does not expire.
	ExpiresAt time.Time
}

// Consents stores consents, one per (tenant, user, client).
type Consents interface {
	// PutConsent creates or replaces the consent.
	PutConsent(ctx context.Context, c Consent) error
	GetConsent(ctx context.Context, tenantID, userID, clientID string) (Consent, error)
	ListUserConsents(ctx context.Context, tenantID, userID string) ([]Consent, error)
	DeleteConsent(ctx context.Context, tenantID, userID, clientID string) error
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
)

// AuditEvent is one recorded event: who did what to what, with what outcome.
type AuditEvent struct {
	ID        string
	TenantID  string
	Time      time.Time
	RequestID string
	// Actor is who acted ("user:<id>", "client:<client_id>", "system").
	Actor string
	// Action is a dotted verb ("user.create", "login.password", ...).
	Action string
	// Target is what was acted on ("user:<id>").
	Target  string
	Outcome string
	Detail  map[string]any
}

// AuditQuery filters QueryAudit. Empty fields do not filter. Results are
// newest first; the cursor pages backwards in time.
type AuditQuery struct {
	TenantID string
	Actor    string
	Action   string
	Target   string
	Outcome  string
	Since    time.Time
	Until    time.Time
	Page
}

// AuditLog stores audit events.
type AuditLog interface {
	AppendAudit(ctx context.Context, events ...AuditEvent) error
	QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, string, error)
}

// Bundle is an installed plugin bundle version.
type Bundle struct {
	Name       string
	Version    string
	ABIVersion string
	Digest     string
	Manifest   []byte
	Archive    []byte
	// State is "enabled", "disabled" or "previous" (kept for roll back).
	State       string
	InstalledAt time.Time
	// Install is the operator's decisions (bundles.go); nil on a row an
	// older build wrote, whose decisions are only in Manifest.
	Install *BundleInstall
}

// Bundles stores plugin bundles, keyed by (name, version).
type Bundles interface {
	PutBundle(ctx context.Context, b Bundle) error
	GetBundle(ctx context.Context, name, version string) (Bundle, error)
	// ListBundles lists every stored version, ordered by name then
	// install time. Archives are not loaded.
	ListBundles(ctx context.Context) ([]Bundle, error)
	SetBundleState(ctx context.Context, name, version, state string) error
	DeleteBundle(ctx context.Context, name, version string) error
}

// KVEntry is one value in a plugin's key-value space.
type KVEntry struct {
	Key       string
	Value     []byte
	ExpiresAt time.Time // zero: no expiry
}

// PluginKV is a small key-value space per (plugin, tenant). Expired entries
// are never returned.
type PluginKV interface {
	KVGet(ctx context.Context, plugin, tenantID, key string) (KVEntry, error)
	KVPut(ctx context.Context, plugin, tenantID string, e KVEntry) error
	KVDelete(ctx context.Context, plugin, tenantID, key string) error
	// KVList lists entries whose key starts with prefix, ordered by key.
	KVList(ctx context.Context, plugin, tenantID, prefix string, p Page) ([]KVEntry, string, error)
}

// KVPurger is an optional interface of a Store (find it by type assertion):
// DeleteExpiredKV removes plugin key-value entries that expired before t and
// returns how many it removed. Both kernel backends implement it.
type KVPurger interface {
	DeleteExpiredKV(ctx context.Context, t time.Time) (int, error)
}

// NewID returns a new record id: a UUIDv7, so ids sort by creation time and
// make stable, index-friendly cursors.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}
