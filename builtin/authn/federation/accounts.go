package federation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore"
)

// JIT modes of an instance (config key jit).
const (
	// JITCreate creates a local user on the first login of an identity
	// nothing links yet, after trying the links the instance allows.
	JITCreate = "create"
	// JITLinkOnly never creates users; an unlinked identity is linked to
	// the user an earlier step signed in, or by verified email when
	// link_by_email allows it, or refused.
	JITLinkOnly = "link_only"
	// JITOff uses only existing links (made by an administrator or by the
	// user through the self-service API); anything else is refused.
	JITOff = "off"
)

// Identity is what an upstream provider asserted, mapped to local
// attribute names.
type Identity struct {
	// IDP is the authenticator instance; Issuer the upstream's issuer
	// or entity id; Subject its stable id of the user.
	IDP, Issuer, Subject string
	Username             string
	Email                string
	EmailVerified        bool
	DisplayName          string
	GivenName            string
	FamilyName           string
	PhoneNumber          string
	// Attributes are the other mapped attributes.
	Attributes map[string]any
}

// Policy is how an instance may resolve an identity nothing links yet.
type Policy struct {
	// JIT is JITCreate, JITLinkOnly or JITOff.
	JIT string
	// LinkByEmail links to the one local user whose verified email
	// address is the identity's, when the upstream says that address is
	// verified too.
	LinkByEmail bool
}

// Account is the local user an identity resolved to.
type Account struct {
	UserID   string
	Username string
	// Created is true when just-in-time provisioning created the user;
	// Linked when this login made the link.
	Created, Linked bool
}

// Accounts resolves federated identities to local users.
type Accounts struct {
	Store      Store
	UserStores UserStores
	Log        *slog.Logger
}

// Resolve returns the local user of id in the tenant, following the
// instance's policy; knownSubject is the user an earlier step of the login
// signed in ("" when none). A refusal the user must see is a *Refusal;
// other errors are technical failures.
func (a *Accounts) Resolve(ctx context.Context, tenant store.Tenant, id Identity, p Policy, knownSubject string) (Account, error) {
	if id.IDP == "" || id.Subject == "" {
		return Account{}, Refuse(StatusBad, MsgUnverified, errors.New("identity without idp or subject"))
	}
	link, err := a.Store.FindLink(ctx, tenant.ID, id.IDP, id.Subject)
	switch {
	case err == nil:
		if knownSubject != "" && knownSubject != link.UserID {
			return Account{}, Refuse(StatusForbidden, MsgLinkedElse, fmt.Errorf("identity %s/%s links user %s, the login has %s", id.IDP, id.Subject, link.UserID, knownSubject))
		}
		return a.usable(ctx, tenant, link.UserID, Account{})
	case !errors.Is(err, store.ErrNotFound):
		return Account{}, fmt.Errorf("finding the link of %s: %w", id.IDP, err)
	}
	if p.JIT == JITOff {
		return Account{}, Refuse(StatusForbidden, MsgNoAccount, fmt.Errorf("no link for %s/%s and jit is off", id.IDP, id.Subject))
	}
	if knownSubject != "" {
		// A user an earlier step signed in adds this identity.
		return a.link(ctx, tenant, knownSubject, id, Account{})
	}
	if p.LinkByEmail && id.Email != "" && id.EmailVerified {
		// Only a local address proven to belong to its user counts: an
		// unverified one may have been typed in by someone else.
		users, _, err := a.Store.ListUsers(ctx, tenant.ID, store.UserQuery{Email: id.Email, Page: store.Page{Limit: maxEmailMatches}})
		if err != nil {
			return Account{}, fmt.Errorf("finding users by email: %w", err)
		}
		var verified []store.User
		for _, u := range users {
			if u.EmailVerified {
				verified = append(verified, u)
			}
		}
		switch len(verified) {
		case 0:
		case 1:
			return a.link(ctx, tenant, verified[0].ID, id, Account{})
		default:
			return Account{}, Refuse(StatusForbidden, MsgAmbiguous, fmt.Errorf("%d users share the email of %s/%s", len(verified), id.IDP, id.Subject))
		}
	}
	if p.JIT != JITCreate {
		return Account{}, Refuse(StatusForbidden, MsgNoAccount, fmt.Errorf("no link for %s/%s and jit is %s", id.IDP, id.Subject, p.JIT))
	}
	u, err := a.create(ctx, tenant, id)
	if err != nil {
		return Account{}, err
	}
	return a.link(ctx, tenant, u.ID, id, Account{Created: true})
}

// usable checks that the user may sign in.
func (a *Accounts) usable(ctx context.Context, tenant store.Tenant, userID string, acc Account) (Account, error) {
	u, err := a.Store.GetUser(ctx, tenant.ID, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Account{}, Refuse(StatusForbidden, MsgNoAccount, fmt.Errorf("linked user %s is gone", userID))
	case err != nil:
		return Account{}, fmt.Errorf("loading the linked user: %w", err)
	case !u.Enabled || u.LockedUntil.After(time.Now()):
		return Account{}, Refuse(StatusForbidden, MsgDisabled, fmt.Errorf("user %s is disabled or locked", userID))
	}
	acc.UserID, acc.Username = u.ID, u.Username
	return acc, nil
}

// link records the link of id to userID, then checks the user.
func (a *Accounts) link(ctx context.Context, tenant store.Tenant, userID string, id Identity, acc Account) (Account, error) {
	if _, err := a.usable(ctx, tenant, userID, acc); err != nil {
		var r *Refusal
		if acc.Created && errors.As(err, &r) && r.Message == MsgNoAccount {
			// Created in a store whose users are not in Latch's database.
			return Account{}, Refuse(StatusForbidden, MsgProvisioner, err)
		}
		return Account{}, err
	}
	_, err := a.Store.CreateLink(ctx, store.Link{TenantID: tenant.ID, UserID: userID, IdP: id.IDP, Subject: id.Subject, Email: truncate(id.Email, 320)})
	switch {
	case errors.Is(err, store.ErrConflict):
		// A concurrent login of the same identity linked it first.
		l, ferr := a.Store.FindLink(ctx, tenant.ID, id.IDP, id.Subject)
		if ferr != nil || l.UserID != userID {
			return Account{}, Refuse(StatusForbidden, MsgLinkedElse, err)
		}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		// The user is not in Latch's database (a directory's user).
		return Account{}, Refuse(StatusForbidden, MsgProvisioner, fmt.Errorf("linking %s/%s to %s: %w", id.IDP, id.Subject, userID, err))
	case err != nil:
		return Account{}, fmt.Errorf("linking %s/%s: %w", id.IDP, id.Subject, err)
	}
	a.Log.InfoContext(ctx, "federated identity linked", "tenant", tenant.Name, "idp", id.IDP, "user", userID, "created", acc.Created)
	acc.Linked = true
	return a.usable(ctx, tenant, userID, acc)
}

// maxEmailMatches bounds the users linking by email looks at.
const maxEmailMatches = 50

// usernameRE is what a just-in-time username may look like; anything else
// is replaced by a name derived from the identity.
var usernameRE = regexp.MustCompile(`^[\p{L}\p{N}._@+-]{1,128}$`)

// JITUsername is the username a just-in-time user gets: the mapped one
// when it is usable, else "{idp}-{hash of subject}".
func JITUsername(id Identity) string {
	if u := strings.TrimSpace(id.Username); usernameRE.MatchString(u) {
		return u
	}
	sum := sha256.Sum256([]byte(id.Subject))
	return truncate(id.IDP, 64) + "-" + hex.EncodeToString(sum[:8])
}

// create provisions the user in the tenant's primary user store.
func (a *Accounts) create(ctx context.Context, tenant store.Tenant, id Identity) (abi.User, error) {
	var inst *extension.Instance
	if p, ok := a.UserStores.(primaryStore); ok {
		var err error
		if inst, err = p.PrimaryUserStore(ctx, tenant.Name); err != nil {
			return abi.User{}, Refuse(StatusForbidden, MsgProvisioner, fmt.Errorf("finding the primary user store: %w", err))
		}
	} else if stores := a.UserStores.UserStores(ctx, tenant.Name); len(stores) > 0 {
		inst = stores[0]
	}
	if inst == nil {
		return abi.User{}, Refuse(StatusForbidden, MsgProvisioner, errors.New("the tenant enables no user store"))
	}
	w, ok := extension.As[userstore.Writer](inst)
	if !ok {
		return abi.User{}, Refuse(StatusForbidden, MsgProvisioner, fmt.Errorf("primary user store %q is read-only", inst.Name()))
	}
	attrs := map[string]any{}
	for k, v := range id.Attributes {
		attrs[k] = v
	}
	attrs["federated_idp"] = id.IDP
	req := abi.CreateUserRequest{Tenant: tenant.Name, Config: inst.Config(), User: abi.User{
		Username: JITUsername(id), Email: id.Email, EmailVerified: id.Email != "" && id.EmailVerified,
		DisplayName: id.DisplayName, GivenName: id.GivenName, FamilyName: id.FamilyName,
		PhoneNumber: id.PhoneNumber, Enabled: true, Attributes: attrs,
	}}
	var u abi.User
	err := extension.Call(ctx, inst, abi.OpCreateUser, func(ctx context.Context) error {
		var err error
		u, err = w.CreateUser(ctx, req)
		return err
	})
	switch {
	case errors.Is(err, userstore.ErrConflict), fault.CodeOf(err) == fault.CodeConflict:
		return abi.User{}, Refuse(StatusForbidden, MsgNameTaken, err)
	case fault.CodeOf(err) == fault.CodeInvalidRequest:
		return abi.User{}, Refuse(StatusForbidden, MsgProvisioner, err)
	case err != nil:
		return abi.User{}, fmt.Errorf("creating the user in store %q: %w", inst.Name(), err)
	case u.ID == "":
		return abi.User{}, fmt.Errorf("creating the user in store %q: no id returned", inst.Name())
	}
	a.Log.InfoContext(ctx, "federated user provisioned", "tenant", tenant.Name, "idp", id.IDP, "user", u.ID, "store", inst.Name())
	return u, nil
}

// StatusOf is the HTTP status of err at an endpoint: a refusal's own, 503
// for an unavailable upstream or store, 500 otherwise.
func StatusOf(err error) int {
	var r *Refusal
	switch {
	case errors.As(err, &r):
		return r.Status
	case fault.CodeOf(err) == fault.CodeUnavailable, fault.CodeOf(err) == fault.CodeTimeout:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
