package storetest

import (
	"fmt"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

func testRoles(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	want := store.Role{TenantID: tid, Name: "admin", Description: "all powers",
		Permissions: []string{"users:read", "users:write", "clients:*"}}
	got, err := s.CreateRole(ctx, want)
	ok(t, err, "CreateRole")
	if got.ID == "" || got.CreatedAt.IsZero() {
		t.Fatalf("CreateRole did not set the id and times: %+v", got)
	}
	want.ID, want.CreatedAt, want.UpdatedAt = got.ID, got.CreatedAt, got.UpdatedAt
	same(t, "CreateRole result", got, want)
	r, err := s.GetRole(ctx, tid, got.ID)
	ok(t, err, "GetRole")
	same(t, "GetRole", r, want)
	r, err = s.GetRoleByName(ctx, tid, "admin")
	ok(t, err, "GetRoleByName")
	same(t, "GetRoleByName", r, want)
	_, err = s.GetRoleByName(ctx, tid, "root")
	is(t, err, store.ErrNotFound, "GetRoleByName of a missing name")
	_, err = s.GetRole(ctx, tid, store.NewID())
	is(t, err, store.ErrNotFound, "GetRole of a missing id")

	_, err = s.CreateRole(ctx, store.Role{TenantID: tid, Name: "admin"})
	is(t, err, store.ErrConflict, "CreateRole with a taken name")
	_, err = s.CreateRole(ctx, store.Role{TenantID: tid})
	is(t, err, store.ErrInvalid, "CreateRole without a name")
	viewer := mkRole(t, s, tid, "viewer")

	upd := r
	upd.Name, upd.Permissions = "superadmin", []string{"*"}
	u, err := s.UpdateRole(ctx, upd)
	ok(t, err, "UpdateRole")
	r, err = s.GetRole(ctx, tid, upd.ID)
	ok(t, err, "GetRole after UpdateRole")
	same(t, "GetRole after UpdateRole", r, u)
	if r.Name != "superadmin" || len(r.Permissions) != 1 || !r.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("UpdateRole did not replace the fields: %+v", r)
	}
	upd.Name = "viewer"
	_, err = s.UpdateRole(ctx, upd)
	is(t, err, store.ErrConflict, "UpdateRole to a taken name")
	upd.Name = ""
	_, err = s.UpdateRole(ctx, upd)
	is(t, err, store.ErrInvalid, "UpdateRole to an empty name")
	_, err = s.UpdateRole(ctx, store.Role{ID: store.NewID(), TenantID: tid, Name: "ghost"})
	is(t, err, store.ErrNotFound, "UpdateRole of a missing id")

	all := []string{r.ID, viewer.ID}
	for i := range 3 {
		all = append(all, mkRole(t, s, tid, fmt.Sprint("r", i)).ID)
	}
	keys := collectPages(t, 2, func(p store.Page) ([]store.Role, string, error) { return s.ListRoles(ctx, tid, p) },
		func(r store.Role) string { return r.ID })
	checkPaged(t, "ListRoles by 2", keys, all)

	ok(t, s.DeleteRole(ctx, tid, viewer.ID), "DeleteRole")
	_, err = s.GetRole(ctx, tid, viewer.ID)
	is(t, err, store.ErrNotFound, "GetRole after DeleteRole")
	is(t, s.DeleteRole(ctx, tid, viewer.ID), store.ErrNotFound, "DeleteRole twice")
}

func testRoleAssignments(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	u := mkUser(t, s, tid, "alice")
	other := mkUser(t, s, tid, "bob")
	g1, g2 := mkGroup(t, s, tid, "staff"), mkGroup(t, s, tid, "ops")
	// Created out of name order, so that ordering by name is observable.
	zeta, beta, admin, auditor, unused := mkRole(t, s, tid, "zeta"), mkRole(t, s, tid, "beta"),
		mkRole(t, s, tid, "admin"), mkRole(t, s, tid, "auditor"), mkRole(t, s, tid, "unused")
	ok(t, s.AddGroupMember(ctx, tid, g1.ID, u.ID), "AddGroupMember")
	ok(t, s.AddGroupMember(ctx, tid, g2.ID, u.ID), "AddGroupMember")

	for _, a := range []struct {
		role          store.Role
		kind, subject string
	}{
		{zeta, store.SubjectUser, u.ID},
		{admin, store.SubjectUser, u.ID},
		{beta, store.SubjectUser, u.ID},
		{beta, store.SubjectGroup, g1.ID},
		{beta, store.SubjectGroup, g2.ID},
		{auditor, store.SubjectGroup, g2.ID},
		{unused, store.SubjectUser, other.ID},
	} {
		ok(t, s.AssignRole(ctx, tid, a.role.ID, a.kind, a.subject), "AssignRole "+a.role.Name)
	}
	ok(t, s.AssignRole(ctx, tid, admin.ID, store.SubjectUser, u.ID), "AssignRole twice")

	names := func(rs []store.Role, err error) string {
		t.Helper()
		ok(t, err, "listing roles")
		return fmt.Sprint(ids(rs, roleName))
	}
	if got := names(s.ListSubjectRoles(ctx, tid, store.SubjectUser, u.ID)); got != "[admin beta zeta]" {
		t.Errorf("ListSubjectRoles of the user: got %s, want [admin beta zeta]", got)
	}
	if got := names(s.ListSubjectRoles(ctx, tid, store.SubjectGroup, g2.ID)); got != "[auditor beta]" {
		t.Errorf("ListSubjectRoles of the group: got %s, want [auditor beta]", got)
	}
	if got := names(s.ListEffectiveUserRoles(ctx, tid, u.ID)); got != "[admin auditor beta zeta]" {
		t.Errorf("ListEffectiveUserRoles: got %s, want [admin auditor beta zeta]", got)
	}
	rs, err := s.ListEffectiveUserRoles(ctx, tid, u.ID)
	ok(t, err, "ListEffectiveUserRoles")
	for _, r := range rs {
		if r.Name == "admin" {
			same(t, "ListEffectiveUserRoles record", r, admin)
		}
	}

	is(t, s.AssignRole(ctx, tid, admin.ID, "robot", u.ID), store.ErrInvalid, "AssignRole to an unknown subject kind")
	is(t, s.UnassignRole(ctx, tid, admin.ID, "robot", u.ID), store.ErrInvalid, "UnassignRole of an unknown subject kind")
	_, err = s.ListSubjectRoles(ctx, tid, "robot", u.ID)
	is(t, err, store.ErrInvalid, "ListSubjectRoles of an unknown subject kind")
	is(t, s.AssignRole(ctx, tid, store.NewID(), store.SubjectUser, u.ID), store.ErrNotFound, "AssignRole of a missing role")
	is(t, s.AssignRole(ctx, tid, admin.ID, store.SubjectUser, store.NewID()), store.ErrNotFound, "AssignRole to a missing user")
	is(t, s.AssignRole(ctx, tid, admin.ID, store.SubjectGroup, store.NewID()), store.ErrNotFound, "AssignRole to a missing group")
	is(t, s.AssignRole(ctx, tid, admin.ID, store.SubjectGroup, u.ID), store.ErrNotFound, "AssignRole to a user id as a group")

	ok(t, s.UnassignRole(ctx, tid, zeta.ID, store.SubjectUser, u.ID), "UnassignRole")
	ok(t, s.UnassignRole(ctx, tid, zeta.ID, store.SubjectUser, u.ID), "UnassignRole twice")
	ok(t, s.UnassignRole(ctx, tid, beta.ID, store.SubjectUser, u.ID), "UnassignRole")
	if got := names(s.ListEffectiveUserRoles(ctx, tid, u.ID)); got != "[admin auditor beta]" {
		t.Errorf("ListEffectiveUserRoles after UnassignRole: got %s, want [admin auditor beta] (beta through groups)", got)
	}
	ok(t, s.RemoveGroupMember(ctx, tid, g2.ID, u.ID), "RemoveGroupMember")
	if got := names(s.ListEffectiveUserRoles(ctx, tid, u.ID)); got != "[admin beta]" {
		t.Errorf("ListEffectiveUserRoles after leaving a group: got %s, want [admin beta]", got)
	}
	ok(t, s.DeleteRole(ctx, tid, admin.ID), "DeleteRole")
	if got := names(s.ListSubjectRoles(ctx, tid, store.SubjectUser, u.ID)); got != "[]" {
		t.Errorf("ListSubjectRoles after DeleteRole: got %s, want []", got)
	}
	ok(t, s.DeleteGroup(ctx, tid, g1.ID), "DeleteGroup")
	if got := names(s.ListEffectiveUserRoles(ctx, tid, u.ID)); got != "[]" {
		t.Errorf("ListEffectiveUserRoles after deleting its role and group: got %s, want []", got)
	}
	if got := names(s.ListEffectiveUserRoles(ctx, tid, other.ID)); got != "[unused]" {
		t.Errorf("ListEffectiveUserRoles of the other user: got %s, want [unused]", got)
	}
}
