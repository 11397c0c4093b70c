package admin

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
)

// Directory is the part of a tenant's user stores outside the Latch
// database (user store domains such as an LDAP directory, see
// kernel/userstore/router). The API lists, reads and writes their users
// and groups beside the database's own; their ids carry the domain
// ("LDAP:…") and their names the domain prefix ("LDAP/alice").
// *router.View implements it.
type Directory interface {
	// All lists every store of the tenant (the database's too), in
	// search order.
	All(tenant string) []router.Member
	// Members lists the directory's stores of the tenant, in search order.
	Members(tenant string) []router.Member
	// Owns returns the directory's store an id routes to.
	Owns(tenant, id string) (router.Member, bool)
	// OwnsUsername returns the directory's store a qualified username names.
	OwnsUsername(tenant, username string) (router.Member, bool)
	GetUser(ctx context.Context, tenant, id string) (abi.User, error)
	FindUsers(ctx context.Context, tenant string, req abi.FindUsersRequest) (abi.FindUsersResponse, error)
	ListGroups(ctx context.Context, tenant string, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error)
	CreateUser(ctx context.Context, tenant, domain string, req abi.CreateUserRequest) (abi.User, error)
	UpdateUser(ctx context.Context, tenant string, req abi.UpdateUserRequest) (abi.User, error)
	DeleteUser(ctx context.Context, tenant, id string) error
	// EnsureShadow gives a directory user the database record that roles,
	// group memberships, profiles and links attach to (creating it before
	// the user's first login); an unknown user is userstore.ErrNotFound.
	EnsureShadow(ctx context.Context, tenant, id string) error
}

// dirCursor marks a listing cursor that continues in the directory's
// stores, after the database's users.
const dirCursor = "~"

// userStoreJSON is one user store domain of a tenant.
type userStoreJSON struct {
	Domain   string `json:"domain"`
	Instance string `json:"instance"`
	Module   string `json:"module"`
	Primary  bool   `json:"primary"`
	Writable bool   `json:"writable"`
	Groups   bool   `json:"groups"`
	// Order is the place in the search order of logins, from 1.
	Order int `json:"order"`
}

// listUserStores serves GET /userstores.
func (a *API) listUserStores(c *fiber.Ctx) error {
	var out []userStoreJSON
	if a.d.Directory != nil {
		for i, m := range a.d.Directory.All(tenantOf(c).Name) {
			_, g := m.Instance.Value().(userstore.GroupLister)
			out = append(out, userStoreJSON{
				Domain: m.Domain, Instance: m.Instance.Name(), Module: string(m.Instance.ID()),
				Primary: m.Primary, Writable: m.Writable(), Groups: g, Order: i + 1,
			})
		}
	}
	return c.JSON(newList(out, ""))
}

// dirMembers returns the directory's stores of the request's tenant.
func (a *API) dirMembers(c *fiber.Ctx) []router.Member {
	if a.d.Directory == nil {
		return nil
	}
	return a.d.Directory.Members(tenantOf(c).Name)
}

// dirOwns returns the directory store a user or group id of the request
// routes to.
func (a *API) dirOwns(c *fiber.Ctx, id string) (router.Member, bool) {
	if a.d.Directory == nil || !strings.Contains(id, router.IDSeparator) {
		return router.Member{}, false
	}
	return a.d.Directory.Owns(tenantOf(c).Name, id)
}

// attachTo prepares the user id of the request for data kept in the
// database (a role, a group membership, a profile, a link): a directory
// user gets its shadow record, created on demand. Database users need
// nothing.
func (a *API) attachTo(c *fiber.Ctx, id string) error {
	if _, ok := a.dirOwns(c, id); !ok {
		return nil
	}
	if err := a.d.Directory.EnsureShadow(c.UserContext(), tenantOf(c).Name, id); err != nil {
		return dirError("user", err)
	}
	return nil
}

// checkUser answers not found unless the user id of the request names a
// user of the tenant: a database user, or a directory user (who may have
// no shadow record yet).
func (a *API) checkUser(c *fiber.Ctx, id string) error {
	if _, ok := a.dirOwns(c, id); ok {
		if _, err := a.d.Directory.GetUser(c.UserContext(), tenantOf(c).Name, id); err != nil {
			return dirError("user", err)
		}
		return nil
	}
	if _, err := a.d.Store.GetUser(c.UserContext(), tenantOf(c).ID, id); err != nil {
		return storeError("user", err)
	}
	return nil
}

// dirUserJSON shows a directory user. Directory stores keep no timestamps
// of their own.
func dirUserJSON(m router.Member, u abi.User) userJSON {
	return userJSON{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		PhoneNumber: u.PhoneNumber, DisplayName: u.DisplayName, GivenName: u.GivenName,
		FamilyName: u.FamilyName, Enabled: u.Enabled, Attributes: u.Attributes, Version: u.Version,
		Domain: m.Domain, Locked: u.Locked,
	}
}

// dirError maps a user store's error to the API's: the store faults pass
// (their messages are safe), anything else is internal.
func dirError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case fault.CodeOf(err) == fault.CodeInternal:
		return fault.New(fault.CodeInternal, "internal error").WithCause(err)
	case fault.CodeOf(err) == fault.CodeNotFound:
		return fault.New(fault.CodeNotFound, what+" not found").WithCause(err)
	}
	return err
}

// listDirUsers fills the rest of a user listing from the directory's
// stores. cursor is the directory's own cursor.
func (a *API) listDirUsers(c *fiber.Ctx, q store.UserQuery, cursor string, limit int, out []userJSON) (list[userJSON], error) {
	t := tenantOf(c)
	resp, err := a.d.Directory.FindUsers(c.UserContext(), t.Name, abi.FindUsersRequest{
		Username: q.Username, Email: q.Email, Limit: limit, Cursor: cursor,
	})
	if err != nil {
		return list[userJSON]{}, dirError("user", err)
	}
	for _, u := range resp.Users {
		m, _ := a.d.Directory.Owns(t.Name, u.ID)
		out = append(out, dirUserJSON(m, u))
	}
	next := ""
	if resp.Next != "" {
		next = dirCursor + resp.Next
	}
	return newList(out, next), nil
}

// dirUserInput turns a create or update body into a directory user,
// with the checks the database's users get. The password is passed on in
// clear for the store to hash or hand to its directory.
func (a *API) dirUserInput(in userInput, u *abi.User) error {
	if in.LockedUntil != nil {
		return invalid("locked_until", "is not supported for users of a user store domain; set locked instead")
	}
	if in.Attributes != nil {
		if err := checkAttributes("attributes", *in.Attributes); err != nil {
			return err
		}
		u.Attributes = *in.Attributes
	}
	if in.Password != nil {
		if err := checkPassword(*in.Password); err != nil {
			return err
		}
	}
	scratch := store.User{}
	cp := in
	cp.Password, cp.Attributes, cp.LockedUntil = nil, nil, nil
	if cp.Username != nil {
		name := *cp.Username
		if _, rest, ok := strings.Cut(name, router.UsernameSeparator); ok && rest != "" {
			name = rest
		}
		cp.Username = &name
	}
	if err := a.applyUser(cp, &scratch); err != nil {
		return err
	}
	if in.Username != nil {
		u.Username = *in.Username
	}
	set := func(p *string, dst *string) {
		if p != nil {
			*dst = *p
		}
	}
	set(in.Email, &u.Email)
	set(in.PhoneNumber, &u.PhoneNumber)
	set(in.DisplayName, &u.DisplayName)
	set(in.GivenName, &u.GivenName)
	set(in.FamilyName, &u.FamilyName)
	if in.EmailVerified != nil {
		u.EmailVerified = *in.EmailVerified
	}
	if in.Enabled != nil {
		u.Enabled = *in.Enabled
	}
	if in.Locked != nil {
		u.Locked = *in.Locked
	}
	return nil
}

func (a *API) createDirUser(c *fiber.Ctx, in userInput, domain string) error {
	t := tenantOf(c)
	u := abi.User{Enabled: true}
	if err := a.dirUserInput(in, &u); err != nil {
		return err
	}
	pw := ""
	if in.Password != nil {
		pw = *in.Password
	}
	created, err := a.d.Directory.CreateUser(c.UserContext(), t.Name, domain, abi.CreateUserRequest{User: u, Password: pw})
	if err != nil {
		return dirError("user", err)
	}
	m, _ := a.d.Directory.Owns(t.Name, created.ID)
	a.audit(c, t.ID, event.UserCreate, "user:"+created.ID, store.OutcomeSuccess, map[string]any{"domain": m.Domain})
	c.Location(c.Path() + "/" + created.ID)
	return c.Status(fiber.StatusCreated).JSON(dirUserJSON(m, created))
}

func (a *API) updateDirUser(c *fiber.Ctx, m router.Member, in userInput) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	u, err := a.d.Directory.GetUser(ctx, t.Name, c.Params("id"))
	if err != nil {
		return dirError("user", err)
	}
	if v, ok, err := ifMatch(c); err != nil {
		return err
	} else if ok && v != u.Version {
		return fault.New(fault.CodePreconditionFailed, "user was changed since that version; fetch it again")
	}
	if err := a.dirUserInput(in, &u); err != nil {
		return err
	}
	pw := ""
	if in.Password != nil {
		pw = *in.Password
	}
	u, err = a.d.Directory.UpdateUser(ctx, t.Name, abi.UpdateUserRequest{User: u, Password: pw})
	if err != nil {
		return dirError("user", err)
	}
	a.audit(c, t.ID, event.UserUpdate, "user:"+u.ID, store.OutcomeSuccess, map[string]any{"fields": changedFields(in), "domain": m.Domain})
	return c.JSON(dirUserJSON(m, u))
}

// listDirGroups fills the rest of a group listing from the directory's
// stores.
func (a *API) listDirGroups(c *fiber.Ctx, cursor string, limit int, out []groupJSON) (list[groupJSON], error) {
	resp, err := a.d.Directory.ListGroups(c.UserContext(), tenantOf(c).Name, abi.ListGroupsRequest{Limit: limit, Cursor: cursor})
	if err != nil {
		return list[groupJSON]{}, dirError("group", err)
	}
	for _, g := range resp.Groups {
		m, _ := a.d.Directory.Owns(tenantOf(c).Name, g.ID)
		out = append(out, groupJSON{ID: g.ID, Name: g.Name, Description: g.Description, Domain: m.Domain})
	}
	next := ""
	if resp.Next != "" {
		next = dirCursor + resp.Next
	}
	return newList(out, next), nil
}

var _ Directory = (*router.View)(nil)
