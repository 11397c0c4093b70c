package admin

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

// minPasswordLen is the shortest password the admin API accepts (NIST SP
// 800-63B section 5.1.1.2 asks for at least 8 characters).
const minPasswordLen = config.MinPasswordLength

// userJSON is a user as the API shows it. The password hash never leaves
// the server.
type userJSON struct {
	ID            string         `json:"id"`
	Username      string         `json:"username"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"email_verified"`
	PhoneNumber   string         `json:"phone_number,omitempty"`
	DisplayName   string         `json:"display_name,omitempty"`
	GivenName     string         `json:"given_name,omitempty"`
	FamilyName    string         `json:"family_name,omitempty"`
	Enabled       bool           `json:"enabled"`
	LockedUntil   *time.Time     `json:"locked_until,omitempty"`
	Attributes    map[string]any `json:"attributes,omitempty"`
	Version       int64          `json:"version"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	// Domain is the user store domain of a user kept outside the Latch
	// database ("LDAP"); empty for the database's users.
	Domain string `json:"domain,omitempty"`
	// Locked is set for a locked user of a user store domain (the
	// database's users show locked_until instead).
	Locked bool `json:"locked,omitempty"`
	// State is the account state of a database user: enabled, disabled,
	// locked or suspended (suspend.go).
	State string `json:"state,omitempty"`
	// SuspendedUntil ends a suspension; absent while suspended, the
	// suspension lasts until it is lifted.
	SuspendedUntil   *time.Time `json:"suspended_until,omitempty"`
	SuspensionReason string     `json:"suspension_reason,omitempty"`
}

func toUserJSON(u store.User) userJSON {
	j := userJSON{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		PhoneNumber: u.PhoneNumber, DisplayName: u.DisplayName, GivenName: u.GivenName,
		FamilyName: u.FamilyName, Enabled: u.Enabled, Attributes: withoutProfiles(u.Attributes),
		Version: u.Version, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
	if !u.LockedUntil.IsZero() {
		t := u.LockedUntil.UTC()
		j.LockedUntil = &t
	}
	return withSuspension(j, u, time.Now())
}

// userInput is the body of POST /users and PATCH /users/{id}. On PATCH an
// absent field keeps its value.
type userInput struct {
	Username      *string         `json:"username"`
	Password      *string         `json:"password"`
	Email         *string         `json:"email"`
	EmailVerified *bool           `json:"email_verified"`
	PhoneNumber   *string         `json:"phone_number"`
	DisplayName   *string         `json:"display_name"`
	GivenName     *string         `json:"given_name"`
	FamilyName    *string         `json:"family_name"`
	Enabled       *bool           `json:"enabled"`
	LockedUntil   *time.Time      `json:"locked_until"`
	Attributes    *map[string]any `json:"attributes"`
	// Domain names the user store domain a new user is created in
	// (docs/userstores.md); empty: the primary store. A username with a
	// domain prefix ("LDAP/alice") names it too.
	Domain *string `json:"domain"`
	// Locked locks or unlocks a user of a user store domain.
	Locked *bool `json:"locked"`
}

// apply validates in and writes it onto u. It hashes a new password last,
// after every cheap check has passed.
func (a *API) applyUser(in userInput, u *store.User) error {
	if in.Username != nil {
		if err := checkName("username", *in.Username); err != nil {
			return err
		}
		u.Username = *in.Username
	}
	for _, f := range []struct {
		name string
		in   *string
		out  *string
	}{
		{"phone_number", in.PhoneNumber, &u.PhoneNumber},
		{"display_name", in.DisplayName, &u.DisplayName},
		{"given_name", in.GivenName, &u.GivenName},
		{"family_name", in.FamilyName, &u.FamilyName},
	} {
		if f.in == nil {
			continue
		}
		if err := checkText(f.name, *f.in, maxNameLen*2); err != nil {
			return err
		}
		*f.out = *f.in
	}
	if in.Email != nil {
		if err := checkEmail("email", *in.Email); err != nil {
			return err
		}
		u.Email = *in.Email
	}
	if in.EmailVerified != nil {
		u.EmailVerified = *in.EmailVerified
	}
	if in.Enabled != nil {
		u.Enabled = *in.Enabled
	}
	if in.LockedUntil != nil {
		u.LockedUntil = in.LockedUntil.UTC()
	}
	if in.Attributes != nil {
		if err := checkAttributes("attributes", *in.Attributes); err != nil {
			return err
		}
		if err := checkNoSuspension("attributes", *in.Attributes); err != nil {
			return err
		}
		suspension := u.Attributes
		// The other profiles are not attributes of the default profile:
		// they have routes of their own and survive a replacement.
		ps, kept := u.Attributes[claims.ProfilesAttribute]
		u.Attributes = withoutProfiles(*in.Attributes)
		if kept {
			u.Attributes = maps.Clone(u.Attributes)
			if u.Attributes == nil {
				u.Attributes = map[string]any{}
			}
			u.Attributes[claims.ProfilesAttribute] = ps
		}
		u.Attributes = keepSuspension(suspension, u.Attributes)
	}
	if in.Password != nil {
		if err := checkPassword(*in.Password); err != nil {
			return err
		}
		hash, err := a.d.Hasher.Hash(*in.Password)
		if err != nil {
			return fault.New(fault.CodeInternal, "internal error").WithCause(fmt.Errorf("hashing password: %w", err))
		}
		u.PasswordHash = hash
	}
	return nil
}

func checkPassword(pw string) error {
	switch {
	case len(pw) > password.MaxLength:
		return invalid("password", "must be at most %d bytes", password.MaxLength)
	case len([]rune(pw)) < minPasswordLen:
		return invalid("password", "must be at least %d characters", minPasswordLen)
	}
	return nil
}

func (a *API) createUser(c *fiber.Ctx) error {
	var in userInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Username == nil {
		return invalid("username", "is required")
	}
	if domain, ok := a.createDomain(c, in); ok {
		return a.createDirUser(c, in, domain)
	}
	if in.Locked != nil {
		return invalid("locked", "is for users of a user store domain; set locked_until")
	}
	t := tenantOf(c)
	u := store.User{TenantID: t.ID, Enabled: true}
	if err := a.checkPolicy(c.UserContext(), u, in.Password); err != nil {
		return err
	}
	before := u
	if err := a.applyUser(in, &u); err != nil {
		return err
	}
	a.recordPassword(c.UserContext(), before, &u, in.Password)
	u, err := a.d.Store.CreateUser(c.UserContext(), u)
	if err != nil {
		if fault.CodeOf(storeError("user", err)) == fault.CodeConflict {
			return fault.New(fault.CodeConflict, fmt.Sprintf("username %q is taken", *in.Username)).WithField("username")
		}
		return storeError("user", err)
	}
	a.audit(c, t.ID, event.UserCreate, "user:"+u.ID, store.OutcomeSuccess, nil)
	setETag(c, u.Version)
	c.Location(c.Path() + "/" + u.ID)
	return c.Status(fiber.StatusCreated).JSON(toUserJSON(u))
}

func (a *API) getUser(c *fiber.Ctx) error {
	if m, ok := a.dirOwns(c, c.Params("id")); ok {
		u, err := a.d.Directory.GetUser(c.UserContext(), tenantOf(c).Name, c.Params("id"))
		if err != nil {
			return dirError("user", err)
		}
		return c.JSON(dirUserJSON(m, u))
	}
	u, err := a.d.Store.GetUser(c.UserContext(), tenantOf(c).ID, c.Params("id"))
	if err != nil {
		return storeError("user", err)
	}
	setETag(c, u.Version)
	return c.JSON(toUserJSON(u))
}

func (a *API) listUsers(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	q := store.UserQuery{Username: c.Query("username"), Email: c.Query("email"), Page: p}
	if len(q.Username) > maxNameLen || len(q.Email) > maxEmailLen {
		return invalid("username", "filter is too long")
	}
	// The database's users come first, then those of the user store
	// domains (a cursor starting with dirCursor continues there).
	withDir := len(a.dirMembers(c)) > 0
	if withDir {
		if after, ok := strings.CutPrefix(p.After, dirCursor); ok {
			l, err := a.listDirUsers(c, q, after, p.Limit, nil)
			if err != nil {
				return err
			}
			return c.JSON(l)
		}
		if _, ok := a.d.Directory.OwnsUsername(tenantOf(c).Name, q.Username); ok {
			l, err := a.listDirUsers(c, q, "", p.Limit, nil)
			if err != nil {
				return err
			}
			return c.JSON(l)
		}
		if d, rest, ok := strings.Cut(q.Username, "/"); ok && strings.EqualFold(d, "PRIMARY") {
			q.Username, withDir = rest, false
		}
	}
	users, next, err := a.d.Store.ListUsers(c.UserContext(), tenantOf(c).ID, q)
	if err != nil {
		return storeError("user", err)
	}
	out := make([]userJSON, 0, len(users))
	for _, u := range users {
		// A directory user's shadow is listed as the directory's user.
		if !router.IsShadow(u) {
			out = append(out, toUserJSON(u))
		}
	}
	switch {
	case !withDir || next != "":
	case len(out) < p.Limit:
		l, err := a.listDirUsers(c, q, "", p.Limit-len(out), out)
		if err != nil {
			return err
		}
		return c.JSON(l)
	default:
		next = dirCursor
	}
	return c.JSON(newList(out, next))
}

// createDomain says whether a new user goes to a user store domain
// outside the database, and which.
func (a *API) createDomain(c *fiber.Ctx, in userInput) (string, bool) {
	if a.d.Directory == nil {
		return "", false
	}
	t := tenantOf(c).Name
	if in.Domain != nil && *in.Domain != "" && !strings.EqualFold(*in.Domain, "PRIMARY") {
		return *in.Domain, true
	}
	if m, ok := a.d.Directory.OwnsUsername(t, *in.Username); ok {
		return m.Domain, true
	}
	return "", false
}

func (a *API) updateUser(c *fiber.Ctx) error {
	var in userInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if m, ok := a.dirOwns(c, c.Params("id")); ok {
		return a.updateDirUser(c, m, in)
	}
	if in.Locked != nil || in.Domain != nil {
		return invalid("locked", "locked and domain are for users of a user store domain")
	}
	t := tenantOf(c)
	ctx := c.UserContext()
	u, err := a.d.Store.GetUser(ctx, t.ID, c.Params("id"))
	if err != nil {
		return storeError("user", err)
	}
	if v, ok, err := ifMatch(c); err != nil {
		return err
	} else if ok && v != u.Version {
		return fault.New(fault.CodePreconditionFailed, "user was changed since that version; fetch it again")
	}
	if err := a.checkPolicy(ctx, u, in.Password); err != nil {
		return err
	}
	before := u
	if err := a.applyUser(in, &u); err != nil {
		return err
	}
	a.recordPassword(ctx, before, &u, in.Password)
	u, err = a.d.Store.UpdateUser(ctx, u)
	if err != nil {
		return storeError("user", err)
	}
	detail := map[string]any{"fields": changedFields(in)}
	a.audit(c, t.ID, event.UserUpdate, "user:"+u.ID, store.OutcomeSuccess, detail)
	setETag(c, u.Version)
	return c.JSON(toUserJSON(u))
}

func (a *API) deleteUser(c *fiber.Ctx) error {
	t := tenantOf(c)
	id := c.Params("id")
	if _, ok := a.dirOwns(c, id); ok {
		if err := a.d.Directory.DeleteUser(c.UserContext(), t.Name, id); err != nil {
			return dirError("user", err)
		}
		a.audit(c, t.ID, event.UserDelete, "user:"+id, store.OutcomeSuccess, nil)
		return c.SendStatus(fiber.StatusNoContent)
	}
	if err := a.d.Store.DeleteUser(c.UserContext(), t.ID, id); err != nil {
		return storeError("user", err)
	}
	a.audit(c, t.ID, event.UserDelete, "user:"+id, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) listUserGroups(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	if _, ok := a.dirOwns(c, c.Params("id")); ok {
		resp, err := a.d.Directory.ListGroups(ctx, t.Name, abi.ListGroupsRequest{UserID: c.Params("id"), Limit: store.MaxPageLimit})
		if err != nil {
			return dirError("user", err)
		}
		out := make([]groupJSON, len(resp.Groups))
		for i, g := range resp.Groups {
			m, _ := a.d.Directory.Owns(t.Name, g.ID)
			out[i] = groupJSON{ID: g.ID, Name: g.Name, Description: g.Description, Domain: m.Domain}
		}
		// The database's groups the user's shadow belongs to.
		gs, err := a.d.Store.ListUserGroups(ctx, t.ID, c.Params("id"))
		if err != nil {
			return storeError("group", err)
		}
		for _, g := range gs {
			out = append(out, toGroupJSON(g))
		}
		return c.JSON(newList(out, ""))
	}
	if _, err := a.d.Store.GetUser(ctx, t.ID, c.Params("id")); err != nil {
		return storeError("user", err)
	}
	gs, err := a.d.Store.ListUserGroups(ctx, t.ID, c.Params("id"))
	if err != nil {
		return storeError("group", err)
	}
	out := make([]groupJSON, len(gs))
	for i, g := range gs {
		out[i] = toGroupJSON(g)
	}
	return c.JSON(newList(out, ""))
}

func (a *API) listUserRoles(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	if err := a.checkUser(c, c.Params("id")); err != nil {
		return err
	}
	rs, err := a.d.Store.ListEffectiveUserRoles(ctx, t.ID, c.Params("id"))
	if err != nil {
		return storeError("role", err)
	}
	out := make([]roleJSON, len(rs))
	for i, r := range rs {
		out[i] = toRoleJSON(r)
	}
	return c.JSON(newList(out, ""))
}

// changedFields names the fields a PATCH set, for the audit log (never the
// values: a password must not reach the log).
func changedFields(in userInput) []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"username", in.Username != nil}, {"password", in.Password != nil},
		{"email", in.Email != nil}, {"email_verified", in.EmailVerified != nil},
		{"phone_number", in.PhoneNumber != nil}, {"display_name", in.DisplayName != nil},
		{"given_name", in.GivenName != nil}, {"family_name", in.FamilyName != nil},
		{"enabled", in.Enabled != nil}, {"locked_until", in.LockedUntil != nil},
		{"attributes", in.Attributes != nil}, {"locked", in.Locked != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// setETag sets a weak entity tag from a record version.
func setETag(c *fiber.Ctx, version int64) {
	c.Set(fiber.HeaderETag, `W/"`+strconv.FormatInt(version, 10)+`"`)
}

// ifMatch reads an If-Match header holding one tag this API issued.
func ifMatch(c *fiber.Ctx) (int64, bool, error) {
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" || h == "*" {
		return 0, false, nil
	}
	h = strings.TrimPrefix(h, "W/")
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, false, invalid("If-Match", "must be an ETag this API returned")
	}
	return v, true, nil
}

func jsonSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return maxAttributeJSON + 1
	}
	return len(b)
}
