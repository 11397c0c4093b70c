// Package builtin is the table of extension modules compiled into Latch:
// one visible list, registered into a registry the caller owns, with no
// init() side effects (STYLE rule 4). A node calls Register on its
// registry and passes Deps in extension.LoadOptions; a test builds its own
// registry with just the modules it needs.
package builtin

import (
	authnpassword "github.com/latchid/latch/builtin/authn/password"
	authntotp "github.com/latchid/latch/builtin/authn/totp"
	authnwebauthn "github.com/latchid/latch/builtin/authn/webauthn"
	claimsdialect "github.com/latchid/latch/builtin/claims/dialect"
	"github.com/latchid/latch/builtin/claims/mapping"
	throttlelocal "github.com/latchid/latch/builtin/throttle/local"
	userstorelocal "github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

// Modules returns the builtin modules, sorted by id.
func Modules() []extension.Module {
	return []extension.Module{
		authnpassword.Module(),  // authn.password: username and password against the tenant's user stores
		authntotp.Module(),      // authn.totp: one-time passwords (RFC 6238) as a second factor
		claimsdialect.Module(),  // claims.dialect: local claims to and from OIDC, SCIM, SAML by the tenant's dialect tables
		mapping.Module(),        // claims.mapping: rule-based claim mapping between dialects
		throttlelocal.Module(),  // throttle.local: in-process GCRA rate limiter
		userstorelocal.Module(), // userstore.local: the users in the Latch database
	}
}

// Register registers every builtin module into r. It panics, as
// Registry.Register does, when one is already registered.
func Register(r *extension.Registry) {
	for _, m := range Modules() {
		r.Register(m)
	}
}

// Deps are the dependencies the builtin modules take from
// extension.Env.Dep when they are provisioned. Pass Deps.Map() as
// extension.LoadOptions.Deps.
type Deps struct {
	// Store is the kernel store; userstore.local keeps its users there.
	// Dep name "store" (userstorelocal.DepStore).
	Store store.Store
	// PasswordHasher hashes and verifies user passwords for
	// userstore.local: a *password.Hasher, or a wrapper that bounds
	// concurrent hashes. Dep name "password.hasher"
	// (userstorelocal.DepPasswordHasher).
	PasswordHasher userstorelocal.Hasher
	// UserStores gives authn.password a tenant's user stores in search
	// order. The user stores are usually loaded in the same Registry.Load,
	// so pass a function that reads the current *extension.Instances when
	// called:
	//
	//	authnpassword.UserStoresFunc(func(_ context.Context, tenant string) []*extension.Instance {
	//		return current.Load().Enabled(tenant, extension.KindUserStore)
	//	})
	//
	// Dep name "userstores" (authnpassword.DepUserStores).
	UserStores authnpassword.UserStores
	// Directory is the tenants' user store domains
	// (kernel/userstore/router): authn.password logs "LDAP/alice" in
	// through it, claims.dialect reads users and mapped attributes. Dep
	// name "userstore.directory" (authnpassword.DepDirectory,
	// claimsdialect.DepDirectory).
	Directory *router.Router
	// SecretBox seals secrets at rest under the master key (TOTP secrets):
	// a *secret.Box. Dep name "secret.box" (authntotp.DepBox).
	SecretBox authntotp.Sealer
	// PublicURL is the node's public URL; authn.webauthn derives its
	// relying party id and origin from it. Dep name "public_url"
	// (authnwebauthn.DepPublicURL).
	PublicURL string
}

// Map returns the dependencies by name, for extension.LoadOptions.Deps.
// Unset fields are left out, so that a module needing one fails to
// provision with an error naming it.
func (d Deps) Map() map[string]any {
	m := make(map[string]any, 4)
	if d.Store != nil {
		m[userstorelocal.DepStore] = d.Store
	}
	if d.PasswordHasher != nil {
		m[userstorelocal.DepPasswordHasher] = d.PasswordHasher
	}
	if d.UserStores != nil {
		m[authnpassword.DepUserStores] = d.UserStores
	}
	if d.SecretBox != nil {
		m[authntotp.DepBox] = d.SecretBox
	}
	if d.Directory != nil {
		m[authnpassword.DepDirectory] = d.Directory
	}
	if d.PublicURL != "" {
		m[authnwebauthn.DepPublicURL] = d.PublicURL
	}
	return m
}
