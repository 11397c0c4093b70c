package scim

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore"
	"github.com/latchid/latch/kernel/userstore/router"
)

// Directory is the part of a tenant's user stores outside the Latch
// database: user store domains such as an LDAP directory
// (kernel/userstore/router). Their users and groups are served beside the
// database's: ids carry the domain ("LDAP:…"), so they route back to
// their store, and userName and displayName carry the domain prefix
// ("LDAP/alice"). *router.View implements it.
type Directory interface {
	Members(tenant string) []router.Member
	Owns(tenant, id string) (router.Member, bool)
	OwnsUsername(tenant, username string) (router.Member, bool)
	GetUser(ctx context.Context, tenant, id string) (abi.User, error)
	FindUsers(ctx context.Context, tenant string, req abi.FindUsersRequest) (abi.FindUsersResponse, error)
	ListGroups(ctx context.Context, tenant string, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error)
	CreateUser(ctx context.Context, tenant, domain string, req abi.CreateUserRequest) (abi.User, error)
	UpdateUser(ctx context.Context, tenant string, req abi.UpdateUserRequest) (abi.User, error)
	DeleteUser(ctx context.Context, tenant, id string) error
	// ListGroupMembers returns a directory group with its members, at
	// most the store's bound of them.
	ListGroupMembers(ctx context.Context, tenant, groupID string) (userstore.GroupMembers, error)
	// EnsureShadow gives a directory user the database record that
	// database group memberships attach to, creating it before the
	// user's first login.
	EnsureShadow(ctx context.Context, tenant, id string) error
}

// maxDirPage is the page size of directory reads.
const maxDirPage = 500

// dirOwns returns the directory store an id routes to.
func (s *Service) dirOwns(rc *reqCtx, id string) (router.Member, bool) {
	if s.d.Directory == nil || !strings.Contains(id, router.IDSeparator) || len(id) > 512 {
		return router.Member{}, false
	}
	return s.d.Directory.Owns(rc.tenant.Name, id)
}

func (s *Service) hasDirectory(rc *reqCtx) bool {
	return s.d.Directory != nil && len(s.d.Directory.Members(rc.tenant.Name)) > 0
}

// dirErr turns a user store's error into a SCIM error; a read-only
// domain is a mutability error naming the domain.
func dirErr(what string, err error) *Error {
	var f *fault.Error
	switch {
	case errors.Is(err, userstore.ErrReadOnly) && errors.As(err, &f):
		return &Error{Status: http.StatusBadRequest, ScimType: ErrTypeMutability, Detail: f.Message, cause: err}
	case errors.Is(err, userstore.ErrNotFound):
		return notFound(what)
	case errors.Is(err, userstore.ErrConflict):
		return newErr(http.StatusConflict, ErrTypeUniqueness, "a %s with that name already exists", what)
	case errors.Is(err, userstore.ErrVersionMismatch):
		return newErr(http.StatusPreconditionFailed, "", "the %s was changed by another request; fetch it again", what)
	}
	return asError(err)
}

// dirStoreUser is a directory user in the record form the resource
// rendering reads.
func dirStoreUser(u abi.User) store.User {
	out := store.User{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		PhoneNumber: u.PhoneNumber, DisplayName: u.DisplayName, GivenName: u.GivenName,
		FamilyName: u.FamilyName, Enabled: u.Enabled, Attributes: maps.Clone(u.Attributes), Version: u.Version,
	}
	if u.Locked {
		out.LockedUntil = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	return out
}

func dirABIUser(u store.User) abi.User {
	return abi.User{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		PhoneNumber: u.PhoneNumber, DisplayName: u.DisplayName, GivenName: u.GivenName,
		FamilyName: u.FamilyName, Enabled: u.Enabled, Attributes: u.Attributes, Version: u.Version,
		Locked: !u.LockedUntil.IsZero(),
	}
}

func dirGroups(gs []abi.Group) []store.Group {
	out := make([]store.Group, len(gs))
	for i, g := range gs {
		out[i] = store.Group{ID: g.ID, Name: g.Name, Description: g.Description}
	}
	return out
}

// loadDirUser reads a directory user with its groups.
func (s *Service) loadDirUser(rc *reqCtx, id string) (store.User, map[string]any, *Error) {
	u, err := s.d.Directory.GetUser(rc.ctx, rc.tenant.Name, id)
	if err != nil {
		return store.User{}, nil, dirErr("user", err)
	}
	gs, serr := s.dirUserGroups(rc, id)
	if serr != nil {
		return store.User{}, nil, serr
	}
	su := dirStoreUser(u)
	return su, s.userResource(su, gs, rc.base), nil
}

// dirUserGroups lists a directory user's groups: its store's, then the
// database groups its shadow record belongs to.
func (s *Service) dirUserGroups(rc *reqCtx, id string) ([]store.Group, *Error) {
	gs, err := s.d.Directory.ListGroups(rc.ctx, rc.tenant.Name, abi.ListGroupsRequest{UserID: id, Limit: maxDirPage})
	if err != nil {
		return nil, dirErr("group", err)
	}
	out := dirGroups(gs.Groups)
	db, err := s.d.Store.ListUserGroups(rc.ctx, rc.tenant.ID, id)
	if err != nil {
		return nil, storeErr("group", err)
	}
	return append(out, db...), nil
}

// createDirUser creates a user in the domain its userName names.
func (s *Service) createDirUser(rc *reqCtx, m router.Member, r map[string]any) (map[string]any, *Error) {
	u := store.User{}
	pw, _ := r["password"].(string)
	delete(r, "password")
	if err := s.applyUser(r, &u); err != nil {
		return nil, err
	}
	if pw != "" {
		if err := checkPassword(pw); err != nil {
			return nil, err
		}
	}
	created, err := s.d.Directory.CreateUser(rc.ctx, rc.tenant.Name, m.Domain, abi.CreateUserRequest{User: dirABIUser(u), Password: pw})
	if err != nil {
		return nil, dirErr("user", err)
	}
	s.audit(rc, event.UserCreate, event.Ref("user", created.ID), store.OutcomeSuccess, map[string]any{"domain": m.Domain})
	return s.userResource(dirStoreUser(created), nil, rc.base), nil
}

// saveDirUser writes a replaced or patched directory user back to its
// store.
func (s *Service) saveDirUser(rc *reqCtx, u store.User, r map[string]any, how string) (map[string]any, *Error) {
	pw, _ := r["password"].(string)
	delete(r, "password")
	if err := s.applyUser(r, &u); err != nil {
		return nil, err
	}
	if pw != "" {
		if err := checkPassword(pw); err != nil {
			return nil, err
		}
	}
	updated, err := s.d.Directory.UpdateUser(rc.ctx, rc.tenant.Name, abi.UpdateUserRequest{User: dirABIUser(u), Password: pw})
	if err != nil {
		return nil, dirErr("user", err)
	}
	fields := []string{how}
	if pw != "" {
		fields = append(fields, "password")
	}
	s.audit(rc, event.UserUpdate, event.Ref("user", updated.ID), store.OutcomeSuccess, map[string]any{"operation": fields})
	_, res, serr := s.loadDirUser(rc, updated.ID)
	return res, serr
}

// collectDirUsers adds the directory's users matching e.
func (s *Service) collectDirUsers(rc *reqCtx, e Expr, needGroups bool, out []item) ([]item, *Error) {
	if !s.hasDirectory(rc) {
		return out, nil
	}
	req := abi.FindUsersRequest{Limit: maxDirPage}
	if v, ok := userNameEq(e); ok {
		req.Username = v
	}
	sc := scope{rt: s.users}
	scanned := 0
	for {
		resp, err := s.d.Directory.FindUsers(rc.ctx, rc.tenant.Name, req)
		if err != nil {
			return nil, dirErr("user", err)
		}
		for _, au := range resp.Users {
			u := dirStoreUser(au)
			var gs []store.Group
			if needGroups {
				var serr *Error
				if gs, serr = s.dirUserGroups(rc, u.ID); serr != nil {
					return nil, serr
				}
			}
			r := s.userResource(u, gs, rc.base)
			if e != nil && !sc.match(e, r) {
				continue
			}
			it := item{rt: s.users, r: r}
			if !needGroups {
				id := u.ID
				it.full = func() (map[string]any, *Error) {
					_, full, err := s.loadDirUser(rc, id)
					return full, err
				}
			}
			out = append(out, it)
		}
		scanned += len(resp.Users)
		if scanned > maxScan {
			return nil, badRequest(ErrTypeTooMany, "the filter would examine more than %d users; narrow it with userName eq", maxScan)
		}
		if resp.Next == "" {
			return out, nil
		}
		req.Cursor = resp.Next
	}
}

// collectDirGroups adds the directory's groups matching e. A directory
// group lists its members, at most the store's bound of them
// (dirGroupResource); they are read for the groups a filter on members
// needs, and otherwise only for the groups of the page returned, unless
// the request leaves members out.
func (s *Service) collectDirGroups(rc *reqCtx, e Expr, out []item) ([]item, *Error) {
	if !s.hasDirectory(rc) {
		return out, nil
	}
	needMembers := e != nil && mentions(e, "members")
	req := abi.ListGroupsRequest{Limit: maxDirPage}
	sc := scope{rt: s.group}
	for {
		resp, err := s.d.Directory.ListGroups(rc.ctx, rc.tenant.Name, req)
		if err != nil {
			return nil, dirErr("group", err)
		}
		for _, g := range dirGroups(resp.Groups) {
			var r map[string]any
			if needMembers {
				var serr *Error
				if r, serr = s.dirGroupResource(rc, g.ID); serr != nil {
					return nil, serr
				}
			}
			if r == nil {
				r = s.groupResource(g, nil, rc.base)
			}
			if e != nil && !sc.match(e, r) {
				continue
			}
			it := item{rt: s.group, r: r}
			if !needMembers {
				id, plain := g.ID, r
				it.lazy = "members"
				it.full = func() (map[string]any, *Error) {
					full, err := s.dirGroupResource(rc, id)
					if err == nil && full == nil {
						return plain, nil
					}
					return full, err
				}
			}
			out = append(out, it)
		}
		if len(out) > maxScan {
			return nil, badRequest(ErrTypeTooMany, "the filter matches more than %d groups", maxScan)
		}
		if resp.Next == "" {
			return out, nil
		}
		req.Cursor = resp.Next
	}
}

var _ Directory = (*router.View)(nil)

// getDirGroup reads a directory group by id, with its members unless the
// projection leaves them out.
func (s *Service) getDirGroup(rc *reqCtx, id string, p *projection) (map[string]any, *Error) {
	if p.returns("members") {
		r, err := s.dirGroupResource(rc, id)
		if err != nil || r != nil {
			return r, err
		}
	}
	req := abi.ListGroupsRequest{Limit: maxDirPage}
	for range maxScan / maxDirPage {
		resp, err := s.d.Directory.ListGroups(rc.ctx, rc.tenant.Name, req)
		if err != nil {
			return nil, dirErr("group", err)
		}
		for _, g := range dirGroups(resp.Groups) {
			if g.ID == id {
				return s.groupResource(g, nil, rc.base), nil
			}
		}
		if resp.Next == "" {
			break
		}
		req.Cursor = resp.Next
	}
	return nil, notFound("group")
}

// dirGroupResource renders a directory group with its members. SCIM has
// no paging of a group's members (RFC 7644), so a group lists at most
// the bound its store sets (userstore.ldap: groups.max_members, 1000 by
// default); a group cut at that bound is logged, and its members are
// read in full through the user's groups or the store itself
// (docs/scim.md). A store that does not list members (a plugin store)
// answers nil and no error: its groups are shown without members.
func (s *Service) dirGroupResource(rc *reqCtx, id string) (map[string]any, *Error) {
	gm, err := s.d.Directory.ListGroupMembers(rc.ctx, rc.tenant.Name, id)
	if fault.CodeOf(err) == fault.CodeUnsupported {
		return nil, nil
	}
	if err != nil {
		return nil, dirErr("group", err)
	}
	if gm.More {
		s.d.Log.WarnContext(rc.ctx, "directory group lists more members than one SCIM response carries",
			slog.String("group", gm.Group.ID), slog.Int("listed", len(gm.Members)), slog.Int("limit", gm.Limit))
	}
	members := make([]store.User, len(gm.Members))
	for i, u := range gm.Members {
		members[i] = dirStoreUser(u)
	}
	g := store.Group{ID: gm.Group.ID, Name: gm.Group.Name, Description: gm.Group.Description}
	return s.groupResource(g, members, rc.base), nil
}
