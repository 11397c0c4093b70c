// Package admin serves the admin REST API under /api/admin/v1 (default
// tenant) and /t/{tenant}/api/admin/v1 (other tenants): tenants, users,
// groups, roles, clients, signing keys and the audit log. Its OpenAPI 3
// document is served at /api/admin/v1/openapi.json.
//
// Callers authenticate as an admin client: a client of the default tenant
// whose scopes include ScopeAdmin, with HTTP Basic credentials
// (client_id:client_secret, RFC 7617), or with a bearer access token (RFC
// 6750) the default tenant issued to such a client with the ScopeAdmin
// scope. Admin clients administer every tenant.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
)

// ScopeAdmin is the scope that makes a client an admin client.
const ScopeAdmin = "latch:admin"

// BasePath is where the API is mounted for the default tenant; other tenants
// get the same routes under /t/{tenant}.
const BasePath = "/api/admin/v1"

// PasswordHasher hashes user passwords (argon2id in production).
type PasswordHasher interface {
	Hash(password string) (string, error)
}

// KeyManager rotates and publishes a tenant's signing keys.
type KeyManager interface {
	EnsureKeys(ctx context.Context, tenantID string) error
	Rotate(ctx context.Context, tenantID, alg string) (string, error)
	PrepareNext(ctx context.Context, tenantID, alg string) (string, error)
	PublicJWKS(ctx context.Context, tenantID string) (jose.JSONWebKeySet, error)
}

// BearerTokens validates bearer access tokens presented to the admin API.
type BearerTokens interface {
	// ValidateAdminToken checks raw as an access token of the default
	// tenant (id tenantID) meant for the admin API, and returns the client
	// it was issued to and its scopes. Any error means the token is not
	// accepted; one that is not ErrInvalidBearer means validity could not
	// be decided (the store is down).
	ValidateAdminToken(ctx context.Context, tenantID, raw string) (clientID string, scopes []string, err error)
}

// ErrInvalidBearer is what BearerTokens returns for a token that is not
// valid (malformed, expired, revoked, another issuer or audience).
var ErrInvalidBearer = errors.New("invalid bearer token")

// Auditor records audit events. It must not block the request (the event
// bus queues and drops rather than block).
type Auditor interface {
	Publish(e event.Event) bool
}

// Deps are what the API needs from the node.
type Deps struct {
	Store  store.Store
	Hasher PasswordHasher
	Keys   KeyManager
	Audit  Auditor
	// Extensions, when set, backs GET /extensions.
	Extensions Extensions
	// Bundles runs the plugin bundles (bundles.go); nil: the bundle
	// routes answer unsupported.
	Bundles Bundles
	// Gateway, when set, backs GET /gateway/routes and applies deny
	// policy changes on this node at once.
	Gateway Gateway
	// Adaptive, when set, backs POST /adaptive/try-it.
	Adaptive Adaptive
	// InitialTokens, when set, backs POST /registration/tokens.
	InitialTokens InitialAccessTokens
	// Provisioners, when set, backs the /provisioning routes
	// (provisioning.go).
	Provisioners Provisioners
	// ClientSecrets, when set, is told new client secrets (for
	// client_secret_jwt).
	ClientSecrets ClientSecrets
	// Directory, when set, adds the users and groups of the tenant's
	// user store domains outside the database (userstores.go) and backs
	// GET /userstores.
	Directory Directory
	// Bearer, when set, lets callers authenticate with access tokens.
	Bearer BearerTokens
	Log    *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// Passwords, when set, applies the tenants' password policies to
	// passwords set through the API (passwordreset.go).
	Passwords PasswordPolicy
	// CheckSettings, when set, validates the settings of a tenant before
	// it is stored (builtin/selfservice.CheckSettings); a refusal should
	// be a fault.InvalidRequest naming the setting (tenantsettings.go).
	CheckSettings func(settings map[string]any) error
}

// API is the admin REST API.
type API struct {
	d Deps
}

// New returns the API over d.
func New(d Deps) *API {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &API{d: d}
}

// Mount registers the API's routes on app, for the default tenant at
// BasePath and for every other tenant at /t/:tenant + BasePath.
func (a *API) Mount(app *fiber.App) {
	app.Get(BasePath+"/openapi.json", a.openAPI)
	a.routes(app.Group(BasePath, a.authenticate, a.defaultTenant), true)
	a.routes(app.Group("/t/:tenant"+BasePath, a.authenticate, a.namedTenant), false)
}

// routes adds the table to r. Tenants themselves are managed only at the
// root: a tenant's own API has no /tenants.
func (a *API) routes(r fiber.Router, withTenants bool) {
	for _, rt := range a.table() {
		if !withTenants && (strings.HasPrefix(rt.path, "/tenants") || strings.HasPrefix(rt.path, "/bundles")) {
			continue
		}
		r.Add(rt.method, rt.path, rt.handler)
	}
}

type route struct {
	method  string
	path    string
	summary string
	// in and out are zero values of the request and response body types
	// (nil: none); status is the success status.
	in, out any
	status  int
	handler fiber.Handler
}

// table lists every route of the API. The OpenAPI document is built from it,
// so the two cannot drift apart.
func (a *API) table() []route {
	const (
		get, post, patch, put, del = fiber.MethodGet, fiber.MethodPost, fiber.MethodPatch, fiber.MethodPut, fiber.MethodDelete
		ok, created, none          = fiber.StatusOK, fiber.StatusCreated, fiber.StatusNoContent
	)
	return []route{
		{get, "/tenants", "List tenants", nil, list[tenantJSON]{}, ok, a.listTenants},
		{post, "/tenants", "Create a tenant (with its signing keys)", tenantInput{}, tenantJSON{}, created, a.createTenant},
		{get, "/tenants/:id", "Get a tenant by id or name", nil, tenantJSON{}, ok, a.getTenant},
		{patch, "/tenants/:id", "Update a tenant", tenantInput{}, tenantJSON{}, ok, a.updateTenant},
		{del, "/tenants/:id", "Delete a tenant and everything it owns", nil, nil, none, a.deleteTenant},

		{get, "/users", "List users (filter with ?username= or ?email=)", nil, list[userJSON]{}, ok, a.listUsers},
		{post, "/users", "Create a user", userInput{}, userJSON{}, created, a.createUser},
		{get, "/users/:id", "Get a user", nil, userJSON{}, ok, a.getUser},
		{patch, "/users/:id", "Update a user (If-Match supported)", userInput{}, userJSON{}, ok, a.updateUser},
		{del, "/users/:id", "Delete a user", nil, nil, none, a.deleteUser},
		{get, "/users/:id/groups", "List a user's groups", nil, list[groupJSON]{}, ok, a.listUserGroups},
		{get, "/users/:id/roles", "List a user's effective roles", nil, list[roleJSON]{}, ok, a.listUserRoles},
		{get, "/users/:id/sessions", "List a user's live SSO sessions", nil, list[sessionJSON]{}, ok, a.listUserSessions},
		{del, "/users/:id/sessions", "End every SSO session of a user", nil, nil, none, a.deleteUserSessions},
		{post, "/users/:id/force-password-reset", "Require a new password at the user's next login (ends the user's sessions)", nil, userJSON{}, ok, a.forcePasswordReset},
		{post, "/users/:id/suspend", "Suspend a user (reason, optional until); ends the user's sessions and revokes the user's tokens", suspendInput{}, userJSON{}, ok, a.suspendUser},
		{del, "/users/:id/suspend", "Lift a user's suspension", nil, userJSON{}, ok, a.unsuspendUser},
		{get, "/users/:id/links", "List a user's links to federated identities", nil, list[linkJSON]{}, ok, a.listUserLinks},
		{post, "/users/:id/links", "Link a federated identity (idp instance and subject) to a user", linkInput{}, linkJSON{}, created, a.createUserLink},
		{del, "/users/:id/links/:idp", "Remove a user's link to the federated identity ?subject=", nil, nil, none, a.deleteUserLink},
		{get, "/users/:id/credentials", "List the credentials (passkeys) a user registered with the tenant's authenticators", nil, list[authn.Credential]{}, ok, a.listUserCredentials},
		{del, "/users/:id/credentials/:authenticator/:credential", "Revoke a user's credential at an authenticator instance", nil, nil, none, a.deleteUserCredential},
		{get, "/sessions/:id", "Get an SSO session", nil, sessionJSON{}, ok, a.getSession},
		{del, "/sessions/:id", "End an SSO session", nil, nil, none, a.deleteSession},

		{get, "/groups", "List groups", nil, list[groupJSON]{}, ok, a.listGroups},
		{post, "/groups", "Create a group", groupInput{}, groupJSON{}, created, a.createGroup},
		{get, "/groups/:id", "Get a group", nil, groupJSON{}, ok, a.getGroup},
		{patch, "/groups/:id", "Update a group", groupInput{}, groupJSON{}, ok, a.updateGroup},
		{del, "/groups/:id", "Delete a group", nil, nil, none, a.deleteGroup},
		{get, "/groups/:id/members", "List a group's members", nil, list[userJSON]{}, ok, a.listGroupMembers},
		{put, "/groups/:id/members/:user", "Add a user to a group", nil, nil, none, a.addGroupMember},
		{del, "/groups/:id/members/:user", "Remove a user from a group", nil, nil, none, a.removeGroupMember},

		{get, "/roles", "List roles", nil, list[roleJSON]{}, ok, a.listRoles},
		{post, "/roles", "Create a role", roleInput{}, roleJSON{}, created, a.createRole},
		{get, "/roles/:id", "Get a role", nil, roleJSON{}, ok, a.getRole},
		{patch, "/roles/:id", "Update a role", roleInput{}, roleJSON{}, ok, a.updateRole},
		{del, "/roles/:id", "Delete a role", nil, nil, none, a.deleteRole},
		{put, "/roles/:id/users/:subject", "Assign a role to a user", nil, nil, none, a.assignRole(store.SubjectUser)},
		{del, "/roles/:id/users/:subject", "Take a role from a user", nil, nil, none, a.unassignRole(store.SubjectUser)},
		{put, "/roles/:id/groups/:subject", "Assign a role to a group", nil, nil, none, a.assignRole(store.SubjectGroup)},
		{del, "/roles/:id/groups/:subject", "Take a role from a group", nil, nil, none, a.unassignRole(store.SubjectGroup)},

		{get, "/clients", "List clients", nil, list[clientJSON]{}, ok, a.listClients},
		{post, "/clients", "Register a client (the secret is returned once)", clientInput{}, clientJSON{}, created, a.createClient},
		{get, "/clients/:id", "Get a client", nil, clientJSON{}, ok, a.getClient},
		{patch, "/clients/:id", "Update a client", clientInput{}, clientJSON{}, ok, a.updateClient},
		{del, "/clients/:id", "Delete a client", nil, nil, none, a.deleteClient},
		{post, "/clients/:id/secret", "Rotate a client's secret (returned once)", secretInput{}, clientJSON{}, ok, a.rotateClientSecret},

		{get, "/keys", "The tenant's published signing keys (JWK Set)", nil, jwks{}, ok, a.listKeys},
		{post, "/keys/rotate", "Rotate the tenant's signing key (to the prepared key when there is one)", rotateInput{}, rotateOutput{}, ok, a.rotateKeys},
		{post, "/registration/tokens", "Issue a single-use initial access token for dynamic client registration (shown once)", initialTokenInput{}, initialTokenJSON{}, created, a.issueInitialToken},
		{post, "/keys/prepare", "Publish the next signing key without signing with it yet", rotateInput{}, rotateOutput{}, ok, a.prepareKey},

		{get, "/audit", "Query the audit log, newest first", nil, list[auditJSON]{}, ok, a.queryAudit},

		{post, "/adaptive/try-it", "Run an adaptive script against a synthetic login and return its decisions", adaptive.TryItRequest{}, adaptive.TryItResult{}, ok, a.tryAdaptiveScript},
		{get, "/adaptive/templates", "List the ready-made adaptive scripts", nil, list[adaptive.Template]{}, ok, a.listAdaptiveTemplates},

		{get, "/flows", "List authentication flows (the latest version of each)", nil, list[flowJSON]{}, ok, a.listFlows},
		{post, "/flows", "Create an authentication flow (version 1)", flowInput{}, flowJSON{}, created, a.createFlow},
		{get, "/flows/:name", "Get the latest version of an authentication flow", nil, flowJSON{}, ok, a.getFlow},
		{put, "/flows/:name", "Save a new version of an authentication flow (creates the flow when missing)", flowInput{}, flowJSON{}, ok, a.putFlow},
		{del, "/flows/:name", "Delete every version of an authentication flow no client uses", nil, nil, none, a.deleteFlow},
		{get, "/flows/:name/versions", "List every version of an authentication flow, oldest first", nil, list[flowJSON]{}, ok, a.listFlowVersions},
		{get, "/flows/:name/versions/:version", "Get one version of an authentication flow", nil, flowJSON{}, ok, a.getFlowVersion},
		{post, "/flows/:name/rollback", "Roll an authentication flow back: save a copy of an older version as the newest", rollbackInput{}, flowJSON{}, ok, a.rollbackFlow},

		{get, "/bundles", "Plugin bundles: every stored version with its state, capabilities and grants", nil, list[bundleJSON]{}, ok, a.listBundles},
		{post, "/bundles", "Install a plugin bundle (the .tar.gz archive as the body; ?grants=,&config=,&tenants=)", nil, bundleJSON{}, created, a.installBundle},
		{put, "/bundles/:name", "Upgrade a plugin bundle live (the archive as the body; an upgrade asking for more needs ?grants=)", nil, bundleJSON{}, created, a.upgradeBundle},
		{patch, "/bundles/:name", "Configure a plugin bundle (configuration checked against its schema; tenants)", bundleConfigInput{}, bundleJSON{}, ok, a.configureBundle},
		{post, "/bundles/:name/rollback", "Roll a plugin bundle back to its previous version", nil, bundleJSON{}, ok, a.rollbackBundle},
		{post, "/bundles/:name/enable", "Enable a plugin bundle", nil, bundleJSON{}, ok, a.enableBundle},
		{post, "/bundles/:name/disable", "Disable a plugin bundle", nil, bundleJSON{}, ok, a.disableBundle},
		{put, "/bundles/:name/tenants/:tenant", "Enable a plugin bundle for one more tenant", nil, bundleJSON{}, ok, a.enableBundleTenant},
		{del, "/bundles/:name/tenants/:tenant", "Disable a plugin bundle for one tenant", nil, bundleJSON{}, ok, a.disableBundleTenant},
		{del, "/bundles/:name", "Remove every version of a plugin bundle", nil, nil, none, a.removeBundle},

		{get, "/users/:id/profiles", "List a user's profiles other than the default (per-application claim values)", nil, list[profileJSON]{}, ok, a.listUserProfiles},
		{put, "/users/:id/profiles/:profile", "Set a user's profile: local claims (name or URI) and their values", map[string]any{}, profileJSON{}, ok, a.putUserProfile},
		{del, "/users/:id/profiles/:profile", "Delete a user's profile", nil, nil, none, a.deleteUserProfile},
		{get, "/userstores", "The tenant's user store domains in search order (primary, writable, groups)", nil, list[userStoreJSON]{}, ok, a.listUserStores},
		{get, "/claims/local", "The tenant's local claims (built-in and stored) with their per-user-store attribute mappings", nil, list[claims.LocalClaim]{}, ok, a.listLocalClaims},
		{put, "/claims/local", "Create or replace a local claim (URI, name, description, attribute mappings per user store domain)", localClaimInput{}, claims.LocalClaim{}, ok, a.putLocalClaim},
		{del, "/claims/local", "Delete a stored local claim (?uri=) and the mappings to it", nil, nil, none, a.deleteLocalClaim},
		{get, "/claims/dialects", "The outside claim dialects (oidc, scim, saml, custom) with their number of mappings", nil, list[dialectJSON]{}, ok, a.listDialects},
		{get, "/claims/dialects/:dialect", "The mappings of one outside dialect to local claims", nil, list[claims.Mapping]{}, ok, a.listDialectMappings},
		{put, "/claims/dialects/:dialect", "Map a claim of an outside dialect to a local claim (URI or name)", mappingInput{}, claims.Mapping{}, ok, a.putDialectMapping},
		{del, "/claims/dialects/:dialect", "Delete a stored mapping of an outside dialect (?claim=)", nil, nil, none, a.deleteDialectMapping},

		{get, "/extensions", "Extension modules, loaded instances with their health, and the tenant's enabled instances per kind", nil, extensionsJSON{}, ok, a.listExtensions},

		{get, "/provisioning", "Provisioners with a durable queue, with the tenant's pending and dead-letter counts", nil, list[provisionerJSON]{}, ok, a.listProvisioners},
		{get, "/provisioning/:name/pending", "List a provisioner's queued changes, in delivery order (paged)", nil, list[provision.QueueEntry]{}, ok, a.listQueue(false)},
		{get, "/provisioning/:name/dead-letters", "List a provisioner's dead letters: changes that failed for good (paged)", nil, list[provision.QueueEntry]{}, ok, a.listQueue(true)},
		{post, "/provisioning/:name/dead-letters/retry", "Retry every dead letter of a provisioner", nil, retryAllJSON{}, ok, a.retryAllDeadLetters},
		{post, "/provisioning/:name/dead-letters/:id/retry", "Retry one dead letter", nil, nil, none, a.retryDeadLetter},
		{del, "/provisioning/:name/dead-letters/:id", "Discard one dead letter for good", nil, nil, none, a.discardDeadLetter},

		{get, "/gateway/routes", "The gateway's published routes, with breaker state and endpoint health", nil, list[GatewayRoute]{}, ok, a.listGatewayRoutes},
		{get, "/gateway/deny", "List the gateway's deny policies", nil, list[denyJSON]{}, ok, a.listDenyPolicies},
		{post, "/gateway/deny", "Add a gateway deny policy (ip, cidr, client, user, api); in force on every node within a second", denyInput{}, denyJSON{}, created, a.createDenyPolicy},
		{del, "/gateway/deny/:id", "Remove a gateway deny policy", nil, nil, none, a.deleteDenyPolicy},
		{get, "/gateway/subscriptions", "List the clients subscribed to gateway APIs", nil, list[subscriptionJSON]{}, ok, a.listSubscriptions},
		{post, "/gateway/subscriptions", "Subscribe a client to a gateway API", subscriptionInput{}, subscriptionJSON{}, created, a.createSubscription},
		{del, "/gateway/subscriptions/:id", "Remove a subscription", nil, nil, none, a.deleteSubscription},
		{get, "/gateway/apis", "List the gateway APIs stored in the database (merged with the routes file on every gateway node)", nil, list[gatewayDocJSON]{}, ok, a.listGatewayDocs(gatewayAPIs)},
		{get, "/gateway/apis/:name", "Show a stored gateway API", nil, gatewayDocJSON{}, ok, a.getGatewayDoc(gatewayAPIs)},
		{put, "/gateway/apis/:name", "Create or replace a stored gateway API (the routes file's API fields); in force on every gateway node within a second", gatewayDocInput{}, gatewayDocJSON{}, ok, a.putGatewayDoc(gatewayAPIs)},
		{del, "/gateway/apis/:name", "Delete a stored gateway API", nil, nil, none, a.deleteGatewayDoc(gatewayAPIs)},
		{get, "/gateway/upstreams", "List the gateway upstreams stored in the database", nil, list[gatewayDocJSON]{}, ok, a.listGatewayDocs(gatewayUpstreams)},
		{get, "/gateway/upstreams/:name", "Show a stored gateway upstream", nil, gatewayDocJSON{}, ok, a.getGatewayDoc(gatewayUpstreams)},
		{put, "/gateway/upstreams/:name", "Create or replace a stored gateway upstream (the routes file's upstream fields)", gatewayDocInput{}, gatewayDocJSON{}, ok, a.putGatewayDoc(gatewayUpstreams)},
		{del, "/gateway/upstreams/:name", "Delete a stored gateway upstream", nil, nil, none, a.deleteGatewayDoc(gatewayUpstreams)},
		{post, "/gateway/import", "Import an OpenAPI 3 document (YAML or JSON body) with x-latch-* extensions as a stored gateway API (?name=, ?upstream=, ?base_path=, ?dry_run=)", nil, gatewayDocJSON{}, created, a.importOpenAPI},
	}
}
