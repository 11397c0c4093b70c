package router

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore"
)

// ShadowAttribute marks a database user as the shadow of a directory user:
// its value is the domain of the store that holds the user. Sessions,
// consents, role assignments, linked accounts and passkeys refer to the
// database's users, so a user of another store (LDAP) gets a shadow record
// on the first login, or when an admin attaches data to the user first
// (EnsureShadow), keyed by the tenant and the routable id ("LDAP:5f0c…":
// the store's domain and the entry's stable id), and named with the domain
// prefix ("LDAP/alice"). User ids are unique per tenant in the database,
// so two tenants that sign users in through one directory each keep their
// own shadow of an entry. A shadow has no password and
// never authenticates by itself; the admin API and SCIM list the directory
// user, not the shadow.
const ShadowAttribute = "latch.directory"

// IsShadow reports whether u is the shadow of a directory user.
func IsShadow(u store.User) bool {
	d, ok := u.Attributes[ShadowAttribute].(string)
	return ok && d != ""
}

// ShadowStore is the part of the Latch database that keeps shadows.
type ShadowStore interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
	GetUserByUsername(ctx context.Context, tenantID, username string) (store.User, error)
	CreateUser(ctx context.Context, u store.User) (store.User, error)
	UpdateUser(ctx context.Context, u store.User) (store.User, error)
	DeleteUser(ctx context.Context, tenantID, id string) error
}

// KeepShadows makes the router keep a shadow in st for every user of a
// store other than the primary one that logs in (Authenticate), and remove
// it when the user is deleted through the router. Call it once, before the
// router serves.
func (r *Router) KeepShadows(st ShadowStore) { r.shadows = st }

// shadowAttempts bounds the retries of a shadow write that lost a race with
// a concurrent login of the same user.
const shadowAttempts = 4

// Shadow creates or refreshes the shadow of u, a user of store m in the
// directory's form. It is idempotent and safe under concurrent logins of
// the same user: a create that loses the race on the primary key reads the
// winner's row and refreshes it; an update that loses on the version reads
// again. A shadow never takes over a database user that is not a shadow of
// the same domain.
func (r *Router) Shadow(ctx context.Context, tenant string, m Member, u abi.User) error {
	if r.shadows == nil || m.Primary {
		return nil
	}
	t, err := r.shadows.GetTenantByName(ctx, tenant)
	if err != nil {
		return fmt.Errorf("keeping the shadow of %s: resolving tenant %q: %w", u.ID, tenant, err)
	}
	for range shadowAttempts {
		cur, err := r.shadows.GetUser(ctx, t.ID, u.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = r.createShadow(ctx, t.ID, m, u)
		case err != nil:
			return fmt.Errorf("keeping the shadow of %s: %w", u.ID, err)
		default:
			err = r.refreshShadow(ctx, m, cur, u)
		}
		if errors.Is(err, errRetry) {
			continue
		}
		return err
	}
	return fmt.Errorf("keeping the shadow of %s: %d concurrent writes in a row", u.ID, shadowAttempts)
}

var errRetry = errors.New("shadow write lost a race")

// withShadowProfiles adds the profiles an admin gave a directory user
// (kept on its shadow, claims.ProfilesAttribute) to u, the user as its
// store returned it, so that claims see them as for a database user. A
// user without a shadow has none.
func (r *Router) withShadowProfiles(ctx context.Context, tenant string, m Member, u *abi.User) error {
	if r.shadows == nil || m.Primary {
		return nil
	}
	t, err := r.shadows.GetTenantByName(ctx, tenant)
	if err != nil {
		return fmt.Errorf("reading the shadow of %s: resolving tenant %q: %w", u.ID, tenant, err)
	}
	sh, err := r.shadows.GetUser(ctx, t.ID, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the shadow of %s: %w", u.ID, err)
	}
	ps, ok := sh.Attributes[claims.ProfilesAttribute]
	if !ok || !IsShadow(sh) {
		return nil
	}
	u.Attributes = maps.Clone(u.Attributes)
	if u.Attributes == nil {
		u.Attributes = map[string]any{}
	}
	u.Attributes[claims.ProfilesAttribute] = ps
	return nil
}

// EnsureShadow makes sure the user with a directory id has a database
// record that data can be attached to, and returns the record's id (the
// directory id itself). For a user of the primary store that record is
// the user; for a user of another store it is the shadow, created from the
// store's entry when the user never signed in, and refreshed otherwise.
// So an admin may give LDAP/bob a role, a database group, a profile or a
// linked account before bob's first login. The user must exist in its
// store: an unknown id is userstore.ErrNotFound.
func (r *Router) EnsureShadow(ctx context.Context, tenant, id string) error {
	m, u, err := r.GetUser(ctx, tenant, id)
	if err != nil {
		return err
	}
	if m.Primary {
		return nil
	}
	if r.shadows == nil {
		return fault.Unavailable.WithMessagef("users of user store domain %s cannot hold data in Latch on this server", m.Domain)
	}
	return r.Shadow(ctx, tenant, m, u)
}

// EnsureShadow creates or refreshes the shadow of a user of the view's
// stores (see Router.EnsureShadow); an id of a store outside the view is
// userstore.ErrNotFound.
func (v *View) EnsureShadow(ctx context.Context, tenant, id string) error {
	if _, ok := v.Owns(tenant, id); !ok {
		return userstore.ErrNotFound
	}
	return v.r.EnsureShadow(ctx, tenant, id)
}

func (r *Router) createShadow(ctx context.Context, tenantID string, m Member, u abi.User) error {
	sh := store.User{ID: u.ID, TenantID: tenantID, Attributes: map[string]any{ShadowAttribute: m.Domain}}
	fillShadow(&sh, u)
	_, err := r.shadows.CreateUser(ctx, sh)
	if !errors.Is(err, store.ErrConflict) {
		if err != nil {
			return fmt.Errorf("creating the shadow of %s: %w", u.ID, err)
		}
		return nil
	}
	// Either a concurrent login created the row (the next read finds it),
	// or the username is held by another row.
	old, gerr := r.shadows.GetUserByUsername(ctx, tenantID, u.Username)
	switch {
	case errors.Is(gerr, store.ErrNotFound) || gerr == nil && old.ID == u.ID:
		return errRetry
	case gerr != nil:
		return fmt.Errorf("creating the shadow of %s: %w", u.ID, gerr)
	case old.Attributes[ShadowAttribute] != m.Domain:
		return fault.Conflict.WithMessagef("the database user %q has the name of a user of domain %s; rename it to let that user sign in", clip(u.Username), m.Domain).
			WithCause(fmt.Errorf("creating the shadow of %s: username held by %s", u.ID, old.ID))
	}
	// A stale shadow: the directory entry was recreated with a new id.
	// It keeps its sessions and links under a name that frees the old one.
	old.Username = u.Username + "#" + old.ID
	if _, err := r.shadows.UpdateUser(ctx, old); err != nil && !errors.Is(err, store.ErrVersionMismatch) && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("renaming the stale shadow %s: %w", old.ID, err)
	}
	return errRetry
}

func (r *Router) refreshShadow(ctx context.Context, m Member, cur store.User, u abi.User) error {
	if cur.Attributes[ShadowAttribute] != m.Domain {
		return fault.Conflict.WithMessagef("the database user %q is not the shadow of a user of domain %s", clip(cur.ID), m.Domain)
	}
	next := cur
	next.Attributes = maps.Clone(cur.Attributes)
	fillShadow(&next, u)
	if sameShadow(cur, next) {
		return nil
	}
	_, err := r.shadows.UpdateUser(ctx, next)
	if errors.Is(err, store.ErrVersionMismatch) || errors.Is(err, store.ErrConflict) {
		return errRetry
	}
	if err != nil {
		return fmt.Errorf("refreshing the shadow of %s: %w", u.ID, err)
	}
	return nil
}

// fillShadow copies the directory user's profile onto the shadow. The
// password stays empty and the account enabled: the directory decides
// every login.
func fillShadow(sh *store.User, u abi.User) {
	sh.Username, sh.Email, sh.EmailVerified, sh.PhoneNumber = u.Username, u.Email, u.EmailVerified, u.PhoneNumber
	sh.DisplayName, sh.GivenName, sh.FamilyName = u.DisplayName, u.GivenName, u.FamilyName
	sh.PasswordHash, sh.Enabled = "", true
}

func sameShadow(a, b store.User) bool {
	return a.Username == b.Username && a.Email == b.Email && a.EmailVerified == b.EmailVerified &&
		a.PhoneNumber == b.PhoneNumber && a.DisplayName == b.DisplayName && a.GivenName == b.GivenName &&
		a.FamilyName == b.FamilyName && a.PasswordHash == b.PasswordHash && a.Enabled == b.Enabled
}

// dropShadow removes the shadow of a user deleted from its store, with its
// sessions, consents and links. A missing shadow is no error.
func (r *Router) dropShadow(ctx context.Context, tenant string, m Member, id string) error {
	if r.shadows == nil || m.Primary {
		return nil
	}
	t, err := r.shadows.GetTenantByName(ctx, tenant)
	if err != nil {
		return fmt.Errorf("removing the shadow of %s: resolving tenant %q: %w", id, tenant, err)
	}
	cur, err := r.shadows.GetUser(ctx, t.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing the shadow of %s: %w", id, err)
	}
	if !IsShadow(cur) {
		return nil
	}
	if err := r.shadows.DeleteUser(ctx, t.ID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("removing the shadow of %s: %w", id, err)
	}
	return nil
}
