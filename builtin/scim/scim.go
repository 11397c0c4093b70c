// Package scim serves SCIM 2.0 (RFC 7643, RFC 7644) over the kernel store:
// Users (with the enterprise extension and custom schema extensions),
// Groups, Me (for tokens issued to a signed-in user; 501 for client
// tokens), Bulk, POST /.search, and the discovery endpoints
// ServiceProviderConfig, ResourceTypes and Schemas. The default tenant is
// served at /scim2 and every other tenant at /t/{tenant}/scim2.
//
// Callers present an OAuth 2.0 bearer token (RFC 6750). Tokens with the
// scope ScopeAdmin may do everything; ScopeRead allows reads and searches,
// ScopeWrite allows writes. Every error is answered in the SCIM error
// schema (RFC 7644 section 3.12).
//
// Users are store.User records: userName, name.givenName,
// name.familyName, displayName, active, the primary email and phone number
// live in the record's columns; every other SCIM attribute, the full
// emails and phoneNumbers lists and each extension (under its schema URN)
// live in the user's Attributes. The password is hashed with the node's
// hasher and never returned. Filters, sorting and paging are evaluated in
// Go over the tenant's users; a top-level `userName eq` is narrowed with the
// store's username query first.
package scim

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// Scopes a bearer token may carry.
const (
	// ScopeAdmin allows every SCIM operation (and the admin API).
	ScopeAdmin = "latch:admin"
	// ScopeRead allows GET, POST /.search and the discovery endpoints.
	ScopeRead = "latch:scim:read"
	// ScopeWrite allows creating, replacing, patching and deleting.
	ScopeWrite = "latch:scim:write"
)

// BasePath is where the default tenant's SCIM service is mounted; other
// tenants get it under /t/{tenant}.
const BasePath = "/scim2"

// Limits announced in /ServiceProviderConfig and enforced.
const (
	// MaxBodyBytes is the largest request body accepted.
	MaxBodyBytes = 512 << 10
	// MaxBulkOperations is the most operations one Bulk request may hold.
	MaxBulkOperations = 100
	// MaxResults is the most resources one list response returns.
	MaxResults = 1000
	// DefaultCount is the page size when the client names none.
	DefaultCount = 100
	// MaxPatchOperations is the most operations one PATCH may hold.
	MaxPatchOperations = 100
	// maxScan bounds how many users one filtered listing examines.
	maxScan = 200000
)

// Principal is who a bearer token speaks for.
type Principal struct {
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// Subject is the token's subject: a user id for tokens issued to a
	// signed-in user, the client id for the client credentials grant.
	Subject string
	// Scopes are the granted scopes.
	Scopes []string
	// User is true when Subject is a user of the addressed tenant (an
	// end-user session), which is what /Me needs.
	User bool
}

// BearerTokens validates the bearer tokens presented to the SCIM service.
type BearerTokens interface {
	// ValidateSCIMToken checks raw as an access token for the SCIM service
	// of tenant t. Any error means the token is not accepted; one that does
	// not wrap ErrInvalidBearer means validity could not be decided (the
	// store is down), and is answered 503.
	ValidateSCIMToken(ctx context.Context, t store.Tenant, raw string) (Principal, error)
}

// ErrInvalidBearer is what BearerTokens returns for a token that is not
// valid (malformed, expired, revoked, another issuer or audience).
var ErrInvalidBearer = errors.New("invalid bearer token")

// PasswordHasher hashes user passwords (argon2id in production).
type PasswordHasher interface {
	Hash(password string) (string, error)
}

// Auditor records audit events without blocking the request.
type Auditor interface {
	Publish(e event.Event) bool
}

// Deps are what the SCIM service needs from the node.
type Deps struct {
	Store  store.Store
	Hasher PasswordHasher
	Bearer BearerTokens
	Audit  Auditor
	Log    *slog.Logger
	// Directory, when set, serves the users and groups of the tenant's
	// user store domains outside the database beside its own
	// (domains.go).
	Directory Directory
	// UserExtensions are custom schema extensions of the User resource,
	// beside the enterprise extension (see ParseExtension). Their values
	// are stored in the user's Attributes under the schema URN.
	UserExtensions []*Schema
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// Passwords, when set, applies the tenants' password policies to
	// passwords set through SCIM (passwords.go).
	Passwords PasswordPolicy
}

// Service is the SCIM 2.0 service.
type Service struct {
	d     Deps
	users *resourceType
	group *resourceType
}

// New returns the service over d.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	ext := append([]*Schema{&enterpriseSchema}, d.UserExtensions...)
	return &Service{
		d:     d,
		users: &resourceType{Name: "User", Endpoint: "/Users", Core: &userSchema, Extensions: ext},
		group: &resourceType{Name: "Group", Endpoint: "/Groups", Core: &groupSchema},
	}
}

// Mount registers the routes on app: the default tenant at BasePath, every
// other tenant at /t/:tenant + BasePath.
func (s *Service) Mount(app *fiber.App) {
	s.routes(app.Group(BasePath, s.tenantDefault, s.authenticate))
	s.routes(app.Group("/t/:tenant"+BasePath, s.tenantNamed, s.authenticate))
}

func (s *Service) routes(r fiber.Router) {
	h, self := s.handle, s.handleSelf
	r.Get("/ServiceProviderConfig", self(read, s.serviceProviderConfig))
	r.Get("/ResourceTypes", self(read, s.listResourceTypes))
	r.Get("/ResourceTypes/:id", self(read, s.getResourceType))
	r.Get("/Schemas", self(read, s.listSchemas))
	r.Get("/Schemas/:id", self(read, s.getSchema))

	r.Get("/Users", h(read, s.listUsers))
	r.Post("/Users/.search", h(read, s.searchUsers))
	r.Post("/Users", h(write, s.createUserHTTP))
	r.Get("/Users/:id", h(read, s.getUserHTTP))
	r.Put("/Users/:id", h(write, s.replaceUserHTTP))
	r.Patch("/Users/:id", h(write, s.patchUserHTTP))
	r.Delete("/Users/:id", h(write, s.deleteUserHTTP))

	r.Get("/Groups", h(read, s.listGroups))
	r.Post("/Groups/.search", h(read, s.searchGroups))
	r.Post("/Groups", h(write, s.createGroupHTTP))
	r.Get("/Groups/:id", h(read, s.getGroupHTTP))
	r.Put("/Groups/:id", h(write, s.replaceGroupHTTP))
	r.Patch("/Groups/:id", h(write, s.patchGroupHTTP))
	r.Delete("/Groups/:id", h(write, s.deleteGroupHTTP))

	r.Post("/.search", h(read, s.searchAll))
	r.Post("/Bulk", h(write, s.bulkHTTP))
	r.All("/Me", self(read, s.me))
	r.All("/Me/*", self(read, s.me))
	r.All("/*", h(read, s.noRoute))
	r.All("/", h(read, s.noRoute))
}
